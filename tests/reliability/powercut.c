/* powercut.so: an LD_PRELOAD shim that keeps, beside a watched directory, a copy of its files
 * as the disk would hold them after a power cut: only data that was fsync'ed (or fdatasync'ed).
 *
 *   POWERCUT_WATCH=/abs/state   the directory whose files are tracked
 *   POWERCUT_SHADOW=/abs/copy   the copy as of the last fsync of each file (starts as a copy
 *                               of the watched directory, made by the test)
 *   POWERCUT_FULL=/abs/flag     optional: while this file exists, a write that would grow a
 *                               watched file fails with ENOSPC (a full disk)
 *
 * Writes mark a dirty byte range per file; fsync copies that range from the real file to the
 * shadow and sets the shadow's size. rename and unlink are applied to the shadow at once (the
 * appliance fsyncs the directory right after them). "-shm" files are not tracked: SQLite
 * rebuilds the WAL index after a crash. Built by tests/reliability/kit.py with cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

struct dirty { char path[PATH_MAX]; off_t lo, hi; int used; };
static struct dirty table[256];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *watch, *shadow, *full;
static size_t watch_len;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);

__attribute__((constructor)) static void init(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    watch = getenv("POWERCUT_WATCH");
    shadow = getenv("POWERCUT_SHADOW");
    full = getenv("POWERCUT_FULL");
    watch_len = watch ? strlen(watch) : 0;
}

static int watched(const char *path) {
    size_t n = strlen(path);
    return watch && shadow && strncmp(path, watch, watch_len) == 0 && path[watch_len] == '/'
        && !(n > 4 && strcmp(path + n - 4, "-shm") == 0);
}

static int fd_path(int fd, char *out) {
    char link[64];
    struct stat st;
    if (!watch || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n < 0) return 0;
    out[n] = 0;
    return watched(out);
}

static void shadow_of(const char *path, char *out) {
    snprintf(out, PATH_MAX, "%s%s", shadow, path + watch_len);
}

static struct dirty *entry(const char *path, int create) {
    struct dirty *free_slot = NULL;
    for (int i = 0; i < 256; i++) {
        if (table[i].used && strcmp(table[i].path, path) == 0) return &table[i];
        if (!table[i].used && !free_slot) free_slot = &table[i];
    }
    if (!create || !free_slot) return NULL;
    snprintf(free_slot->path, PATH_MAX, "%s", path);
    free_slot->lo = -1;
    free_slot->hi = 0;
    free_slot->used = 1;
    return free_slot;
}

static void mark(const char *path, off_t lo, off_t hi) {
    pthread_mutex_lock(&mu);
    struct dirty *d = entry(path, 1);
    if (d) {
        if (d->lo < 0 || lo < d->lo) d->lo = lo;
        if (hi > d->hi) d->hi = hi;
    }
    pthread_mutex_unlock(&mu);
}

static int disk_full(int fd, off_t end) {
    struct stat st;
    return full && access(full, F_OK) == 0 && fstat(fd, &st) == 0 && end > st.st_size;
}

static ssize_t tracked(int fd, const void *buf, size_t n, off_t off, int positional,
                       ssize_t (*fn)(int, const void *, size_t, off_t)) {
    char path[PATH_MAX];
    if (!fd_path(fd, path))
        return positional ? fn(fd, buf, n, off) : real_write(fd, buf, n);
    off_t start = positional ? off : lseek(fd, 0, SEEK_CUR);
    if (disk_full(fd, start + (off_t)n)) { errno = ENOSPC; return -1; }
    ssize_t done = positional ? fn(fd, buf, n, off) : real_write(fd, buf, n);
    if (done > 0 && start >= 0) mark(path, start, start + done);
    return done;
}

ssize_t write(int fd, const void *buf, size_t n) { return tracked(fd, buf, n, 0, 0, NULL); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    return tracked(fd, buf, n, off, 1, real_pwrite);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    return tracked(fd, buf, n, off, 1, real_pwrite64);
}

static void make_parents(const char *file) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    for (char *p = dir + strlen(shadow) + 1; *p; p++) {
        if (*p == '/') { *p = 0; mkdir(dir, 0755); *p = '/'; }
    }
}

static void persist(int fd) {
    char path[PATH_MAX], copy[PATH_MAX];
    if (!fd_path(fd, path)) return;
    shadow_of(path, copy);
    pthread_mutex_lock(&mu);
    struct dirty *d = entry(path, 0);
    off_t lo = d ? d->lo : -1, hi = d ? d->hi : 0;
    if (d) d->used = 0;
    pthread_mutex_unlock(&mu);
    make_parents(copy);
    int out = open(copy, O_WRONLY | O_CREAT, 0644);
    if (out < 0) return;
    struct stat st;
    fstat(fd, &st);
    if (lo < 0) { lo = 0; hi = 0; }
    if (hi > st.st_size) hi = st.st_size;
    char buf[65536];
    for (off_t at = lo; at < hi;) {
        size_t want = (size_t)(hi - at) < sizeof buf ? (size_t)(hi - at) : sizeof buf;
        ssize_t got = pread(fd, buf, want, at);
        if (got <= 0) break;
        real_pwrite(out, buf, got, at);
        at += got;
    }
    ftruncate(out, st.st_size);
    close(out);
}

int fsync(int fd) { int rc = real_fsync(fd); if (rc == 0) persist(fd); return rc; }
int fdatasync(int fd) { int rc = real_fdatasync(fd); if (rc == 0) persist(fd); return rc; }

int rename(const char *old, const char *new) {
    int rc = real_rename(old, new);
    if (rc == 0 && watched(old) && watched(new)) {
        char a[PATH_MAX], b[PATH_MAX];
        shadow_of(old, a);
        shadow_of(new, b);
        if (real_rename(a, b) != 0) real_unlink(b);    /* never synced: nothing there */
        pthread_mutex_lock(&mu);
        struct dirty *d = entry(old, 0);
        if (d) snprintf(d->path, PATH_MAX, "%s", new);
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

int unlink(const char *path) {
    int rc = real_unlink(path);
    if (rc == 0 && watched(path)) {
        char copy[PATH_MAX];
        shadow_of(path, copy);
        real_unlink(copy);
        pthread_mutex_lock(&mu);
        struct dirty *d = entry(path, 0);
        if (d) d->used = 0;
        pthread_mutex_unlock(&mu);
    }
    return rc;
}
