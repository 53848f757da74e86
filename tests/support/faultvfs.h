/*
 * faultvfs.h -- an SQLite VFS shim that simulates a full disk, for tests of
 * the offline store. Linked into test binaries only (the unit tests and
 * build/tests/chat-server-faults); the shipped chat-server has none of it.
 *
 * The VFS "chatfault" wraps the default VFS and forwards everything to it,
 * except that xWrite, xTruncate and xSync fail with SQLITE_FULL while the
 * flag file exists (one stat() per call). A test creates the flag file to
 * fill the disk and removes it to free it again, without touching the
 * database.
 *
 * Registered as the process's default VFS, so every connection opened
 * afterwards uses it (the store's, the accounts'): either by
 * faultvfs_register, or before main() when the environment variable
 * CHAT_FAULT_DISKFULL names the flag file (a constructor in faultvfs.c:
 * that is how chat-server-faults is switched on; it logs one WARN line).
 */
#ifndef CHAT_TESTS_FAULTVFS_H
#define CHAT_TESTS_FAULTVFS_H

#define FAULTVFS_NAME "chatfault"

/* Register "chatfault" as the default VFS (once per process; later calls
 * only change the flag file) with flag_path as the flag file, or NULL for
 * none (the disk is never full). The path is copied; it must be shorter
 * than 4096 bytes. Call while no connection using the VFS is busy (it is
 * read without a lock by the store thread). Returns SQLITE_OK,
 * SQLITE_ERROR (no default VFS, path too long) or the code of
 * sqlite3_vfs_register. */
int faultvfs_register(const char *flag_path);

#endif
