/*
 * faultvfs.c -- the "chatfault" VFS: the default VFS with a switch that
 * makes the disk look full. Test binaries only (see faultvfs.h).
 *
 * Layout: a fault_file is our sqlite3_file header followed, in the same
 * allocation SQLite makes for us (szOsFile), by the real VFS's file; every
 * method forwards to that real file. We implement sqlite3_io_methods
 * version 2: the WAL needs the xShm* methods (version 2), and leaving out
 * xFetch/xUnfetch (version 3) turns memory-mapped I/O off, so every write
 * goes through xWrite where the fault is injected. The VFS object itself is
 * version 2 (no xSetSystemCall family, which only the unix test harness of
 * SQLite uses).
 *
 * Invariant: the real VFS's io methods are version 2 or later (the unix VFS
 * is version 3); xOpen refuses a file whose methods are older.
 */
#include "faultvfs.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

typedef struct fault_file {
    sqlite3_file base;   /* pMethods = &fault_io, or NULL when open failed */
    sqlite3_file *real;  /* the real file, just after this struct */
} fault_file;

static sqlite3_vfs fault_vfs;
static char flag_path[4096]; /* "" = never full */

#define REAL(f) (((fault_file *)(f))->real)
#define ROOT ((sqlite3_vfs *)fault_vfs.pAppData)

/* 1 while the flag file exists. One stat() per call: fine for tests. */
static int disk_full(void) {
    struct stat st;
    return flag_path[0] && stat(flag_path, &st) == 0;
}

/* -- io methods: the three that can fail, then plain forwards ---------- */

static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off) {
    if (disk_full()) return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size) {
    if (disk_full()) return SQLITE_FULL;
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags) {
    if (disk_full()) return SQLITE_FULL;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_close(sqlite3_file *f) {
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off) {
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int f_size(sqlite3_file *f, sqlite3_int64 *size) {
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int f_lock(sqlite3_file *f, int lock) {
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}
static int f_unlock(sqlite3_file *f, int lock) {
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}
static int f_check_lock(sqlite3_file *f, int *out) {
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int f_control(sqlite3_file *f, int op, void *arg) {
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int f_sector(sqlite3_file *f) {
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int f_devchar(sqlite3_file *f) {
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int f_shm_map(sqlite3_file *f, int page, int size, int extend,
                     void volatile **out) {
    return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}
static int f_shm_lock(sqlite3_file *f, int off, int n, int flags) {
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void f_shm_barrier(sqlite3_file *f) {
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int f_shm_unmap(sqlite3_file *f, int del) {
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods fault_io = {
    2, /* iVersion: see the top of the file */
    f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock, f_unlock,
    f_check_lock, f_control, f_sector, f_devchar,
    f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap,
    NULL, NULL /* xFetch, xUnfetch: version 3 */
};

/* -- vfs methods: xOpen wraps, the rest forward to the root VFS --------- */

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f,
                  int flags, int *out_flags) {
    (void)vfs;
    fault_file *ff = (fault_file *)f;
    ff->base.pMethods = NULL;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = ROOT->xOpen(ROOT, name, ff->real, flags, out_flags);
    if (!ff->real->pMethods) return rc;
    if (rc == SQLITE_OK && ff->real->pMethods->iVersion < 2) {
        ff->real->pMethods->xClose(ff->real);
        return SQLITE_CANTOPEN;
    }
    ff->base.pMethods = &fault_io; /* SQLite calls xClose even on error */
    return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    (void)vfs;
    return ROOT->xDelete(ROOT, name, sync_dir);
}
static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return ROOT->xAccess(ROOT, name, flags, out);
}
static int v_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out) {
    (void)vfs;
    return ROOT->xFullPathname(ROOT, name, n, out);
}
static void *v_dlopen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return ROOT->xDlOpen(ROOT, name);
}
static void v_dlerror(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    ROOT->xDlError(ROOT, n, out);
}
static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void) {
    (void)vfs;
    return ROOT->xDlSym(ROOT, h, sym);
}
static void v_dlclose(sqlite3_vfs *vfs, void *h) {
    (void)vfs;
    ROOT->xDlClose(ROOT, h);
}
static int v_random(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    return ROOT->xRandomness(ROOT, n, out);
}
static int v_sleep(sqlite3_vfs *vfs, int us) {
    (void)vfs;
    return ROOT->xSleep(ROOT, us);
}
static int v_time(sqlite3_vfs *vfs, double *out) {
    (void)vfs;
    return ROOT->xCurrentTime(ROOT, out);
}
static int v_lasterr(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    return ROOT->xGetLastError ? ROOT->xGetLastError(ROOT, n, out) : 0;
}
static int v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    if (ROOT->iVersion >= 2 && ROOT->xCurrentTimeInt64)
        return ROOT->xCurrentTimeInt64(ROOT, out);
    double d;
    int rc = ROOT->xCurrentTime(ROOT, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

int faultvfs_register(const char *path) {
    size_t n = path ? strlen(path) : 0;
    if (n >= sizeof flag_path) return SQLITE_ERROR;
    memcpy(flag_path, path ? path : "", n + 1);
    if (fault_vfs.zName) return SQLITE_OK; /* registered before */
    sqlite3_vfs *root = sqlite3_vfs_find(NULL);
    if (!root) return SQLITE_ERROR;
    fault_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(fault_file) + root->szOsFile,
        .mxPathname = root->mxPathname,
        .zName = FAULTVFS_NAME,
        .pAppData = root,
        .xOpen = v_open, .xDelete = v_delete, .xAccess = v_access,
        .xFullPathname = v_fullpath, .xDlOpen = v_dlopen,
        .xDlError = v_dlerror, .xDlSym = v_dlsym, .xDlClose = v_dlclose,
        .xRandomness = v_random, .xSleep = v_sleep, .xCurrentTime = v_time,
        .xGetLastError = v_lasterr, .xCurrentTimeInt64 = v_time64,
    };
    int rc = sqlite3_vfs_register(&fault_vfs, 1);
    if (rc != SQLITE_OK) fault_vfs.zName = NULL;
    return rc;
}

/* Before main(): CHAT_FAULT_DISKFULL=<flag file> switches the shim on. A
 * binary that cannot do what its test asked stops at once. */
__attribute__((constructor)) static void faultvfs_from_env(void) {
    const char *flag = getenv("CHAT_FAULT_DISKFULL");
    if (!flag) return;
    if (faultvfs_register(flag) != SQLITE_OK) {
        fprintf(stderr, "cannot set up disk-full injection "
                "(CHAT_FAULT_DISKFULL=%s)\n", flag);
        exit(1);
    }
    log_warn("fault_injection_on",
             "store: fault injection is on: the disk is full while %s "
             "exists (CHAT_FAULT_DISKFULL; a test binary)", flag);
}
