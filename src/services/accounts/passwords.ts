/**
 * Password hashing with bcrypt (bcryptjs). As Synapse does, the password is
 * NFKC-normalised first and the optional pepper appended, so hashes made by
 * Synapse (`$2b$...`) verify here and ours verify there.
 */
import bcrypt from 'bcryptjs';

export class PasswordHasher {
  constructor(
    private readonly rounds: number,
    private readonly pepper = '',
  ) {}

  private prepare(password: string): string {
    return password.normalize('NFKC') + this.pepper;
  }

  hash(password: string): Promise<string> {
    return bcrypt.hash(this.prepare(password), this.rounds);
  }

  async verify(password: string, hash: string | null | undefined): Promise<boolean> {
    if (!hash) return false;
    try {
      return await bcrypt.compare(this.prepare(password), hash);
    } catch {
      return false;
    }
  }
}
