/*
 * store_faultvfs.h -- an SQLite VFS shim that simulates a full disk, for
 * tests of the offline store (store_sqlite.c).
 *
 * The VFS "chatfault" wraps the default VFS and forwards everything to it,
 * except that xWrite, xTruncate and xSync fail with SQLITE_FULL while the
 * flag file exists (one stat() per call). A test creates the flag file to
 * fill the disk and removes it to free it again, without touching the
 * database. store_open() uses it only when CHAT_FAULT_DISKFULL is set.
 */
#ifndef CHAT_SERVER_STORE_FAULTVFS_H
#define CHAT_SERVER_STORE_FAULTVFS_H

#define STORE_FAULTVFS_NAME "chatfault"

/* Register "chatfault" (once per process; later calls only change the flag
 * file) with flag_path as the flag file. The path is copied; it must be
 * shorter than 4096 bytes. Call while no connection using the VFS is busy
 * (it is read without a lock by the store thread). Returns SQLITE_OK,
 * SQLITE_ERROR (no default VFS, path too long) or the code of
 * sqlite3_vfs_register. */
int store_faultvfs_register(const char *flag_path);

#endif
