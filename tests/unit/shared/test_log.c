/* log: re-opening the log file (SIGHUP rotation) while threads log. */
#include "shared/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* The fd number whose /proc/self/fd link names `path`, or -1. */
static int test__fd_of(const char *path)
{
    char link[64], target[PATH_MAX];

    for (int fd = 3; fd < 1024; fd++) {
        ssize_t n;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, path) == 0)
            return fd;
    }
    return -1;
}

static char *test__slurp(const char *path)
{
    static char buf[1 << 16];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* A re-open keeps the fd number: before, it opened the new file on a new
 * number and close()d the old one while other threads could be in write()
 * on it (or about to write to a number a concurrent open() reuses). */
static void test_reopen_keeps_the_fd_number(void **state)
{
    char dir[] = "/tmp/aiproxy-test-log-XXXXXX", a[PATH_MAX], b[PATH_MAX];
    int fd_a, fd_b;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof(a), "%s/a.log", dir);
    snprintf(b, sizeof(b), "%s/b.log", dir);
    log_init("test", LOG_LVL_INFO);
    assert_int_equal(log_reopen(a), 0);
    log_info("line one");
    fd_a = test__fd_of(a);
    assert_true(fd_a >= 3);
    assert_int_equal(log_reopen(b), 0);          /* rotation: a.log moved away */
    log_info("line two");
    fd_b = test__fd_of(b);
    assert_int_equal(fd_b, fd_a);                /* same number, now the new file */
    assert_int_equal(test__fd_of(a), -1);        /* the old file is closed */
    assert_non_null(strstr(test__slurp(a), "line one"));
    assert_null(strstr(test__slurp(a), "line two"));
    assert_non_null(strstr(test__slurp(b), "line two"));
    assert_int_equal(log_reopen("/nonexistent-dir/x.log"), -ENOENT);
    log_info("line three");                      /* the old destination stays */
    assert_non_null(strstr(test__slurp(b), "line three"));
    assert_int_equal(log_reopen(NULL), 0);       /* back to stderr, on the same number */
    assert_int_equal(test__fd_of(b), -1);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_keeps_the_fd_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
