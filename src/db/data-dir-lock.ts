import { closeSync, mkdirSync, openSync, statSync, writeSync, ftruncateSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_FILE = "auth-server.lock";
/** The setting every refusal names. */
const SETTING = "DATA_DIR";

type Flock = (fd: number, operation: number) => number;

/** libc's flock(2), through Bun's FFI: the kernel releases it when the process dies, however it dies. */
function loadFlock(): Flock | undefined {
  const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
  for (const name of ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.dylib", "libSystem.B.dylib"]) {
    try {
      const lib = dlopen(name, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
      return (fd, operation) => lib.symbols.flock(fd, operation) as number;
    } catch {}
  }
  return undefined;
}

/**
 * Takes DATA_DIR for this process alone: two servers on one embedded database (PGlite opens the folder without a lock
 * of its own) would both answer and lose each other's writes. The lock is an exclusive flock on a file in the folder,
 * held as long as the process lives; a second process is refused with one line naming DATA_DIR. Answers the release.
 */
export function lockDataDir(dataDir: string): () => void {
  let isDirectory = false;
  try {
    isDirectory = statSync(dataDir).isDirectory();
  } catch {
    try {
      mkdirSync(dataDir, { recursive: true });
      isDirectory = true;
    } catch (error) {
      throw new ConfigError(SETTING, `must be a directory this process can create or write (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  if (!isDirectory) throw new ConfigError(SETTING, "must be a directory (it names a file)");
  let fd: number;
  try {
    fd = openSync(join(dataDir, LOCK_FILE), "a+");
  } catch (error) {
    throw new ConfigError(SETTING, `must be a directory this process can write (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const flock = loadFlock();
  if (flock && flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    throw new ConfigError(SETTING, `${dataDir} is in use by another auth server process; one process per DATA_DIR (set DATABASE_URL to run several)`);
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
