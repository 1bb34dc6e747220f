import { expect, test } from "bun:test";
import { join } from "node:path";

// Issue 19: the exported App type held the core routes only (or the plugins' at the root, without /auth).
const root = join(import.meta.dir, "..");

test(
  "tsc: the examples' Eden clients compile, a wrong body type and a misspelled route do not",
  async () => {
    // One run over examples/ and the fixtures that must fail: tsc is slow, and one program checks them all.
    const tsc = Bun.spawn([join(root, "node_modules/.bin/tsc"), "--noEmit", "--pretty", "false", "-p", "test/fixtures/types"], {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
    });
    const output = (await new Response(tsc.stdout).text()) + (await new Response(tsc.stderr).text());
    await tsc.exited;
    const errors = output
      .split("\n")
      .map((line) => /^(.+?)\((\d+),\d+\): error (TS\d+)/.exec(line))
      .filter((m) => m !== null)
      .map(([, file, line, code]) => `${file}:${line} ${code}`);
    expect(errors).toEqual([
      "test/fixtures/types/misspelled-route.ts:6 TS2551", // Property 'logn' does not exist ... Did you mean 'login'?
      "test/fixtures/types/wrong-password-type.ts:6 TS2322", // Type 'number' is not assignable to type 'string'
    ]);
    expect(tsc.exitCode).not.toBe(0);
  },
  { timeout: 240_000 },
);
