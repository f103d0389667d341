/* Unit tests for held log lines (log_hold): a responder thread's info lines
 * go out in runs of whole lines, in order, none lost: before a line written
 * unheld (from this thread or another), when the buffer fills, at
 * log_hold(0), and from the flusher when nothing else writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/log.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char test__dir[] = "/tmp/aiproxy-test-loghold-XXXXXX";
static char test__path[PATH_MAX];

static char *test__slurp(void)
{
    static char buf[1 << 20];
    int fd = open(test__path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int test__setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(test__dir));
    snprintf(test__path, sizeof(test__path), "%s/log", test__dir);
    unsetenv("AIPROXY_LOG_FORMAT");
    unsetenv("AIPROXY_LOG_LEVEL");
    log_init("test-hold", LOG_LVL_INFO);
    assert_int_equal(log_reopen(test__path), 0);
    return 0;
}

static int test__teardown(void **state)
{
    (void)state;
    log_reopen(NULL);
    unlink(test__path);
    rmdir(test__dir);
    return 0;
}

static void test__truncate(void)
{
    close(open(test__path, O_WRONLY | O_TRUNC));
}

static void held_lines_come_before_a_later_warning(void **state)
{
    const char *text, *a, *b, *w;

    (void)state;
    test__truncate();
    assert_int_equal(log_hold(1), 0);
    log_held(LOG_LVL_INFO, "held one");
    log_held(LOG_LVL_INFO, "held two");
    log_warn("a warning");
    text = test__slurp();
    a = strstr(text, "info: held one\n");
    b = strstr(text, "info: held two\n");
    w = strstr(text, "warn: a warning\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(w);
    assert_true(a < b && b < w);
    assert_int_equal(log_hold(0), 0);
}

static void log_hold_off_writes_what_is_held(void **state)
{
    (void)state;
    test__truncate();
    assert_int_equal(log_hold(1), 0);
    assert_int_equal(log_hold(1), 0);   /* twice: still one hold */
    log_held(LOG_LVL_INFO, "last words");
    assert_int_equal(log_hold(0), 0);
    assert_non_null(strstr(test__slurp(), "info: last words\n"));
    assert_int_equal(log_hold(0), 0);   /* not holding: nothing to do */
}

/* Many lines, more than one buffer: every one whole, once, in order. */
static void a_full_buffer_goes_out_in_whole_lines(void **state)
{
    char *text, *save = NULL;
    int n = 0;

    (void)state;
    test__truncate();
    assert_int_equal(log_hold(1), 0);
    for (int i = 0; i < 2000; i++)
        log_held(LOG_LVL_INFO, "line %04d %s", i, "padding padding padding padding padding");
    assert_int_equal(log_hold(0), 0);
    text = test__slurp();
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char want[32];
        snprintf(want, sizeof(want), "info: line %04d ", n);
        assert_non_null(strstr(l, want));
        assert_non_null(strstr(l, " padding padding padding padding padding"));
        n++;
    }
    assert_int_equal(n, 2000);
}

static void *test__warner(void *arg)
{
    (void)arg;
    log_warn("from another thread");
    return NULL;
}

/* Another thread's unheld line first writes out what this thread holds. */
static void another_threads_warning_writes_held_lines_first(void **state)
{
    const char *text, *h, *w;
    pthread_t t;

    (void)state;
    test__truncate();
    assert_int_equal(log_hold(1), 0);
    log_held(LOG_LVL_INFO, "held before");
    assert_int_equal(pthread_create(&t, NULL, test__warner, NULL), 0);
    pthread_join(t, NULL);
    text = test__slurp();
    h = strstr(text, "info: held before\n");
    w = strstr(text, "warn: from another thread\n");
    assert_non_null(h);
    assert_non_null(w);
    assert_true(h < w);
    assert_int_equal(log_hold(0), 0);
}

/* Nothing else writes: the flusher does, within its period (waited for
 * with a bound of 10 s, not timed). */
static void the_flusher_writes_an_idle_threads_lines(void **state)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    int found = 0;

    (void)state;
    test__truncate();
    assert_int_equal(log_hold(1), 0);
    log_held(LOG_LVL_INFO, "idle thread's line");
    for (int i = 0; i < 1000 && !found; i++) {
        found = strstr(test__slurp(), "info: idle thread's line\n") != NULL;
        if (!found)
            nanosleep(&ts, NULL);
    }
    assert_true(found);
    assert_int_equal(log_hold(0), 0);
}

/* A rotation (log_reopen) writes what is held to the old file first; an
 * info line written unheld is not held. */
static void a_reopen_writes_held_lines_to_the_old_file(void **state)
{
    char other[PATH_MAX];
    const char *text;

    (void)state;
    test__truncate();
    snprintf(other, sizeof(other), "%s/log.new", test__dir);
    assert_int_equal(log_hold(1), 0);
    log_held(LOG_LVL_INFO, "before the rotation");
    log_info("unheld info");
    log_held(LOG_LVL_INFO, "held after unheld");
    assert_int_equal(log_reopen(other), 0);
    log_held(LOG_LVL_INFO, "after the rotation");
    assert_int_equal(log_hold(0), 0);
    text = test__slurp();
    assert_non_null(strstr(text, "info: before the rotation\n"));
    assert_true(strstr(text, "info: before the rotation\n") < strstr(text, "info: unheld info\n"));
    assert_non_null(strstr(text, "info: held after unheld\n"));
    assert_null(strstr(text, "after the rotation\n"));
    assert_int_equal(log_reopen(test__path), 0);
    unlink(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(held_lines_come_before_a_later_warning),
        cmocka_unit_test(log_hold_off_writes_what_is_held),
        cmocka_unit_test(a_full_buffer_goes_out_in_whole_lines),
        cmocka_unit_test(another_threads_warning_writes_held_lines_first),
        cmocka_unit_test(the_flusher_writes_an_idle_threads_lines),
        cmocka_unit_test(a_reopen_writes_held_lines_to_the_old_file),
    };
    return cmocka_run_group_tests(tests, test__setup, test__teardown);
}
