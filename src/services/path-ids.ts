/**
 * Bounds on the identifiers a client puts in a request path that the
 * services keep in index keys (an event type, a transaction id): one check
 * for every endpoint that takes them, with the same Matrix error.
 */
import { Errors } from '../util/errors.js';

/** The longest event type accepted (UTF-8 bytes), as for the spec's other identifiers. */
export const MAX_EVENT_TYPE_BYTES = 255;
/** The longest transaction id accepted (UTF-8 bytes). */
export const MAX_TXN_ID_BYTES = 1024;

/** 400 M_INVALID_PARAM for an empty or over-long event type. */
export function validateEventType(type: string): void {
  if (!type || Buffer.byteLength(type) > MAX_EVENT_TYPE_BYTES) throw Errors.invalidParam('Invalid event type');
}

/** 400 M_INVALID_PARAM for an over-long transaction id. */
export function validateTxnId(txnId: string): void {
  if (Buffer.byteLength(txnId) > MAX_TXN_ID_BYTES) throw Errors.invalidParam(`Transaction id longer than ${MAX_TXN_ID_BYTES} bytes`);
}
