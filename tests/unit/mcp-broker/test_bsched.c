/* test_bsched — the broker's scheduler hint (issue 20): what
 * AIPROXY_BROKER_SLICE_US accepts, and that applying it keeps the thread's
 * policy and nice value and, on a kernel with custom slices (Linux >= 6.12,
 * /proc/self/sched shows se.slice), sets the request size, inherited by a
 * child process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mcp-broker/bsched.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_parse(void **state)
{
    unsigned us = 1;

    (void)state;
    assert_int_equal(bsched_parse(NULL, &us), 0);
    assert_int_equal(us, BSCHED_DEFAULT_US);
    assert_int_equal(bsched_parse("", &us), 0);
    assert_int_equal(us, BSCHED_DEFAULT_US);
    assert_int_equal(bsched_parse("0", &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(bsched_parse("100", &us), 0);
    assert_int_equal(us, 100);
    assert_int_equal(bsched_parse("100000", &us), 0);
    assert_int_equal(us, 100000);
    const char *bad[] = { "99", "100001", "-5", "+5000", " 5000", "5000us", "5e3", "x",
                          "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        us = 1;
        assert_int_equal(bsched_parse(bad[i], &us), -EINVAL);
        assert_int_equal(us, BSCHED_DEFAULT_US);
    }
}

/* se.slice of /proc/<pid>/sched in ns, or -1 when the kernel does not show it. */
static long long slice_of(const char *pid)
{
    char path[64], line[256];
    long long v = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%s/sched", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "se.slice", 8) == 0) {
            char *colon = strchr(line, ':');
            v = colon ? strtoll(colon + 1, NULL, 10) : -1;
        }
    fclose(f);
    return v;
}

static void test_apply(void **state)
{
    int nice_before, pol_before = sched_getscheduler(0);
    int rc;

    (void)state;
    errno = 0;
    nice_before = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(bsched_apply(0), 0);                 /* 0: nothing asked */
    rc = bsched_apply(7000);
    assert_true(rc == 0 || rc == -EPERM || rc == -ENOSYS);
    assert_int_equal(sched_getscheduler(0), pol_before);
    assert_int_equal(getpriority(PRIO_PROCESS, 0), nice_before);
    if (rc == 0 && slice_of("self") >= 0) {
        pid_t kid;
        int st;
        assert_int_equal(slice_of("self"), 7000000LL);
        kid = fork();
        assert_true(kid >= 0);
        if (kid == 0)
            _exit(slice_of("self") == 7000000LL ? 0 : 1);   /* an MCP server inherits it */
        assert_int_equal(waitpid(kid, &st, 0), kid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
