/**
 * CRC-32 (IEEE 802.3, as zlib computes it) of bytes, or of a string's UTF-8
 * bytes: zlib's own where Node has it (20.15 and later), else a table-driven
 * one. Access-token checksums and the events writers' room shard
 * (nginx's `hash`) both use it.
 */
import zlib from 'node:zlib';

let table: Uint32Array | undefined;

/** The table-driven CRC-32, for a Node without zlib.crc32 (exported for its tests). */
export function crc32Table(data: Uint8Array | string): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export const crc32: (data: Uint8Array | string) => number = typeof zlib.crc32 === 'function' ? (data) => zlib.crc32(data) : crc32Table;
