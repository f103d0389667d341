/* Unit tests for shared/rid: id formats, uniqueness across threads and
 * across fork(2), and one getrandom(2) per thread rather than one per id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/rid.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Interposes libc's getrandom to count the calls rid makes. */
static _Atomic unsigned test_getrandom_calls;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    test_getrandom_calls++;
    return syscall(SYS_getrandom, buf, len, flags);
}

#define N_IDS 2000

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rid_hex_writes_n_lowercase_digits(void **state)
{
    char id[40];
    size_t n;
    (void)state;

    for (n = 0; n <= 33; n++) {
        memset(id, 'X', sizeof(id));
        rid_hex(id, n);
        assert_int_equal(strlen(id), n);
        assert_int_equal(strspn(id, "0123456789abcdef"), n);
        assert_int_equal(id[n + 1], 'X');   /* nothing written past the NUL */
    }
}

static void rid_alnum_uses_all_62_characters_and_no_other(void **state)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char id[201];
    int seen[256] = { 0 }, i, j, kinds = 0;
    (void)state;

    for (i = 0; i < 100; i++) {
        rid_alnum(id, 200);
        assert_int_equal(strlen(id), 200);
        assert_int_equal(strspn(id, alnum), 200);
        for (j = 0; j < 200; j++)
            seen[(unsigned char)id[j]]++;
    }
    for (i = 0; i < 62; i++)
        kinds += seen[(unsigned char)alnum[i]] > 0;
    assert_int_equal(kinds, 62);   /* 20000 draws: each misses with p ~ e^-322 */
}

static void *make_ids(void *arg)
{
    char **ids = arg;
    for (int i = 0; i < N_IDS; i++) {
        ids[i] = malloc(33);
        rid_hex(ids[i], 32);
    }
    return NULL;
}

static void rid_ids_differ_across_threads(void **state)
{
    char **ids = calloc(2 * N_IDS, sizeof(*ids));
    pthread_t a, b;
    int i;
    (void)state;

    assert_int_equal(pthread_create(&a, NULL, make_ids, ids), 0);
    assert_int_equal(pthread_create(&b, NULL, make_ids, ids + N_IDS), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    qsort(ids, 2 * N_IDS, sizeof(*ids), cmp_str);
    for (i = 1; i < 2 * N_IDS; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    for (i = 0; i < 2 * N_IDS; i++)
        free(ids[i]);
    free(ids);
}

static void *count_keying(void *arg)
{
    unsigned *calls = arg, before;
    char id[33];

    rid_hex(id, 32);                      /* this thread's first id keys it */
    before = test_getrandom_calls;
    for (int i = 0; i < N_IDS; i++)
        rid_hex(id, 32);
    *calls = test_getrandom_calls - before;
    return NULL;
}

static void rid_keys_a_thread_once_not_per_id(void **state)
{
    unsigned before = test_getrandom_calls, after_first = 0;
    pthread_t t;
    (void)state;

    assert_int_equal(pthread_create(&t, NULL, count_keying, &after_first), 0);
    pthread_join(t, NULL);
    assert_int_equal(after_first, 0);
    assert_true(test_getrandom_calls - before >= 1);   /* keyed from getrandom */
}

static void rid_parent_and_forked_child_differ(void **state)
{
    char mine[33], theirs[33] = "";
    int fd[2], status = 0;
    pid_t pid;
    (void)state;

    rid_hex(mine, 32);   /* the parent's stream is keyed before the fork */
    assert_int_equal(pipe(fd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[33];
        rid_hex(id, 32);
        ssize_t w = write(fd[1], id, 32);
        _exit(w == 32 ? 0 : 1);
    }
    close(fd[1]);
    assert_int_equal(read(fd[0], theirs, 32), 32);
    close(fd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rid_hex(mine, 32);   /* the parent's next id, from the same point */
    assert_string_not_equal(mine, theirs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rid_hex_writes_n_lowercase_digits),
        cmocka_unit_test(rid_alnum_uses_all_62_characters_and_no_other),
        cmocka_unit_test(rid_ids_differ_across_threads),
        cmocka_unit_test(rid_keys_a_thread_once_not_per_id),
        cmocka_unit_test(rid_parent_and_forked_child_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
