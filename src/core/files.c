/* File mapping, whole-file reads, atomic writes, folder locks, paths. */
#define _DEFAULT_SOURCE /* flock */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

harp_status harp_map_file(const char *path, harp_mapped *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return harp_err(HARP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return harp_err(HARP_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return harp_err(HARP_ERR_IO, "%s: is a directory, expected a file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return HARP_OK;
    }
    if (st.st_size < (1 << 20)) {
        size_t n = (size_t)st.st_size, got = 0;
        uint8_t *b = harp_xmalloc(n, path);
        while (b && got < n) {
            ssize_t k = read(fd, b + got, n - got);
            if (k <= 0) {
                int e = k < 0 ? errno : EIO;
                free(b);
                close(fd);
                return harp_err(HARP_ERR_IO, "%s: read failed: %s", path, k < 0 ? strerror(e) : "file shrank while reading");
            }
            got += (size_t)k;
        }
        close(fd);
        if (!b) return HARP_ERR_OOM;
        out->data = b;
        out->size = n;
        out->priv_ = b;
        out->heap_ = 1;
        return HARP_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return harp_err(HARP_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    out->priv_ = p;
    return HARP_OK;
}

void harp_unmap_file(harp_mapped *m) {
    if (m && m->priv_ && m->heap_) free(m->priv_);
    else if (m && m->priv_) munmap(m->priv_, m->size);
    if (m) memset(m, 0, sizeof *m);
}

harp_status harp_read_file(const char *path, char **data, size_t *size) {
    return harp_read_file_max(path, (size_t)-1 / 2, data, size);
}

harp_status harp_read_file_max(const char *path, size_t max, char **data, size_t *size) {
    *data = NULL;
    if (size) *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return harp_err(HARP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return harp_err(HARP_ERR_IO, "%s: not a readable regular file", path);
    }
    if (st.st_size > 0 && (unsigned long long)st.st_size > max) {
        fclose(f);
        return harp_err(HARP_ERR_FORMAT, "%s: %lld bytes, too large for this kind of file (limit %zu)", path, (long long)st.st_size, max);
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
    char *buf = harp_xmalloc(cap, path);
    if (!buf) {
        fclose(f);
        return HARP_ERR_OOM;
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n > max) {   /* a file that grows, or a device with no size */
            free(buf);
            fclose(f);
            return harp_err(HARP_ERR_FORMAT, "%s: more than %zu bytes, too large for this kind of file", path, max);
        }
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return harp_err(HARP_ERR_OOM, "%s: out of memory reading file", path);
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return harp_err(HARP_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (size) *size = n;
    return HARP_OK;
}

int harp_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int harp_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *harp_path_problem(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno == ENOENT ? "no such file or directory" : strerror(errno);
    return S_ISDIR(st.st_mode) ? "is a directory" : S_ISREG(st.st_mode) ? "is a regular file" : "not a regular file or directory";
}

char *harp_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = harp_xmalloc(a + b + 2, "path");
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

harp_status harp_mkdir_p(const char *path) {
    char *p = harp_strdup(path);
    if (!p) return HARP_ERR_OOM;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                harp_status st = harp_err(HARP_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    free(p);
    if (!harp_dir_exists(path)) return harp_err(HARP_ERR_IO, "%s: cannot use as a folder: %s", path, harp_path_problem(path));
    return HARP_OK;
}

harp_status harp_atomic_open(harp_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = harp_strdup(path);
    size_t n = strlen(path) + 32;
    f->tmp = harp_xmalloc(n, "temporary path");
    if (!f->path || !f->tmp) {
        free(f->path);
        free(f->tmp);
        return HARP_ERR_OOM;
    }
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        harp_status st = harp_err(HARP_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
        free(f->path);
        free(f->tmp);
        memset(f, 0, sizeof *f);
        return st;
    }
    return HARP_OK;
}

/* Test hooks, read once (-1: off). HARP_TEST_ENOSPC_AFTER=N (tests/cli/rel_full_disk.sh) makes the
 * process's atomic writes fail with ENOSPC once N bytes in all have been written, as on a disk that
 * fills up (the bytes that still fit are written first). HARP_TEST_WRITE_DELAY_US=U
 * (tests/cli/rel_kill_resume.sh) sleeps U µs before each write, widening the windows in which a
 * kill lands mid-write. */
static long long enospc_left = -2, write_delay_us = -2;

static long long env_ll(const char *name) {
    const char *e = getenv(name);
    return e && *e && atoll(e) >= 0 ? atoll(e) : -1;
}

harp_status harp_atomic_write(harp_atomic_file *f, const void *data, size_t n) {
    if (f->failed) return HARP_ERR_IO;
    if (enospc_left == -2) {
        enospc_left = env_ll("HARP_TEST_ENOSPC_AFTER");
        write_delay_us = env_ll("HARP_TEST_WRITE_DELAY_US");
    }
    if (write_delay_us > 0) {
        struct timespec ts = {(time_t)(write_delay_us / 1000000), (long)(write_delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    size_t fit = enospc_left >= 0 && (unsigned long long)n > (unsigned long long)enospc_left ? (size_t)enospc_left : n;
    if (fit && fwrite(data, 1, fit, (FILE *)f->fp) != fit) {
        f->failed = 1;
        return harp_err(HARP_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    if (enospc_left >= 0) enospc_left -= (long long)fit;
    if (fit < n) {
        f->failed = 1;
        return harp_err(HARP_ERR_IO, "%s: write failed: %s", f->path, strerror(ENOSPC));
    }
    return HARP_OK;
}

/* The rename is durable only once the folder's entry is on disk too (a power cut otherwise may
 * lose the new name though the data was synced). Best effort: some file systems refuse fsync on a
 * folder, and the file itself is complete either way. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? harp_strdup(path) : harp_strdup(".");
    if (!dir) return;
    if (slash) dir[slash == path ? 1 : (size_t)(slash - path)] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

harp_status harp_atomic_commit(harp_atomic_file *f) {
    FILE *fp = f->fp;
    harp_status st = HARP_OK;
    if (f->failed) st = HARP_ERR_IO;
    if (st == HARP_OK && (fflush(fp) != 0 || fsync(fileno(fp)) != 0))
        st = harp_err(HARP_ERR_IO, "%s: flush failed: %s", f->path, strerror(errno));
    if (fclose(fp) != 0 && st == HARP_OK)
        st = harp_err(HARP_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    if (st == HARP_OK && rename(f->tmp, f->path) != 0)
        st = harp_err(HARP_ERR_IO, "%s: cannot rename into place: %s", f->path, strerror(errno));
    if (st != HARP_OK) remove(f->tmp);
    else sync_parent_dir(f->path);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    return st;
}

void harp_atomic_abort(harp_atomic_file *f) {
    if (!f->fp) return;
    fclose(f->fp);
    remove(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
}

harp_status harp_write_file_atomic(const char *path, const void *data, size_t n) {
    harp_atomic_file f;
    HARP_TRY(harp_atomic_open(&f, path));
    harp_status st = harp_atomic_write(&f, data, n);
    if (st != HARP_OK) {
        harp_atomic_abort(&f);
        return st;
    }
    return harp_atomic_commit(&f);
}

/* The holder's "pid what" line, for the message (empty while it is still being written). */
static void lock_holder(int fd, char *buf, size_t n) {
    ssize_t k = pread(fd, buf, n - 1, 0);
    buf[k > 0 ? k : 0] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '\n' || (unsigned char)*p < 0x20) *p = 0;
}

harp_status harp_dir_lock_take(harp_dir_lock *lk, const char *dir, const char *what) {
    lk->fd = -1;
    lk->path = harp_path_join(dir, ".harp.lock");
    if (!lk->path) return HARP_ERR_OOM;
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open(lk->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) break;
        int r = flock(fd, LOCK_EX | LOCK_NB), e = errno;
        if (r != 0 && (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS)) {
            harp_log(HARP_LOG_WARN, "%s: the file system does not support locks; not protected against a second writer", dir);
            lk->fd = fd;
            return HARP_OK;
        }
        if (r != 0) {
            char who[128];
            lock_holder(fd, who, sizeof who);
            close(fd);
            harp_status st = e == EWOULDBLOCK
                                 ? harp_err(HARP_ERR_IO, "%s: in use by another harp process (%s); wait for it to finish or use another folder",
                                            dir, who[0] ? who : "starting")
                                 : harp_err(HARP_ERR_IO, "%s: cannot lock: %s", lk->path, strerror(e));
            free(lk->path);
            lk->path = NULL;
            return st;
        }
        /* a releasing holder unlinks the file: if ours is no longer the one at the path, retry */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lk->path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            char line[128];
            int n = snprintf(line, sizeof line, "pid %ld, %s\n", (long)getpid(), what);
            if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) { /* informational only */ }
            lk->fd = fd;
            return HARP_OK;
        }
        close(fd);
    }
    harp_status st = harp_err(HARP_ERR_IO, "%s: cannot create lock file: %s", lk->path, strerror(errno));
    free(lk->path);
    lk->path = NULL;
    return st;
}

void harp_dir_lock_release(harp_dir_lock *lk) {
    if (!lk || lk->fd < 0) return;
    unlink(lk->path);   /* while still holding it: see the inode check in harp_dir_lock_take */
    close(lk->fd);
    free(lk->path);
    lk->fd = -1;
    lk->path = NULL;
}

/* NAME.tmp.<digits>: what harp_atomic_open creates. */
static int is_atomic_temp(const char *n) {
    const char *t = strstr(n, ".tmp.");
    if (!t || !t[5]) return 0;
    for (t += 5; *t; t++)
        if (*t < '0' || *t > '9') return 0;
    return 1;
}

int harp_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!is_atomic_temp(e->d_name)) continue;
        char *p = harp_path_join(dir, e->d_name);
        if (p && unlink(p) == 0) n++;
        free(p);
    }
    if (d) closedir(d);
    if (n) harp_log(HARP_LOG_INFO, "%s: removed %d temporary file(s) left by an interrupted run", dir, n);
    return n;
}
