// Runs the CLI in-process and captures what it writes: { code, out, err }.
import { main } from '../lib/cli/main';

export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '',
    err = '';
  const code = await main(
    args,
    (s) => void (out += s),
    (s) => void (err += s),
  );
  return { code, out, err };
}
