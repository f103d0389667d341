/* Unit tests for agent/anthvocab: the one Anthropic vocabulary that the
 * backend (Anthropic -> OpenAI) and the /v1/messages surface (OpenAI ->
 * Anthropic) share, so the two directions cannot drift apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/anthvocab.h"

#include <string.h>

static void stop_reasons_both_ways(void **state)
{
    static const char *const anth[] = {"end_turn", "stop_sequence", "pause_turn", "tool_use",
                                       "max_tokens", "model_context_window_exceeded", "refusal"};
    static const char *const openai[] = {"stop", "stop", "stop", "tool_calls",
                                         "length", "length", "content_filter"};
    (void)state;
    for (size_t i = 0; i < sizeof anth / sizeof anth[0]; i++) {
        const char *f = anthv_finish_reason(anth[i]);
        assert_string_equal(f, openai[i]);
        /* back again: a reason of the same OpenAI meaning */
        assert_string_equal(anthv_finish_reason(anthv_stop_reason(f)), f);
    }
    assert_string_equal(anthv_stop_reason("stop"), "end_turn");
    assert_string_equal(anthv_stop_reason("length"), "max_tokens");
    assert_string_equal(anthv_stop_reason("tool_calls"), "tool_use");
    assert_string_equal(anthv_stop_reason("content_filter"), "refusal");
    assert_string_equal(anthv_stop_reason(NULL), "end_turn");
    assert_string_equal(anthv_stop_reason("bogus"), "end_turn");
    assert_string_equal(anthv_finish_reason(NULL), "");
    assert_string_equal(anthv_finish_reason("bogus"), "");
}

static void error_types_both_ways(void **state)
{
    static const int statuses[] = {400, 401, 403, 404, 413, 429, 500, 504, 529};
    const char *otype = NULL;
    int st = 0;
    (void)state;
    /* what the surface sends for a status, the backend reads as that status */
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        anthv_error_kind(anthv_error_type(statuses[i]), 0, &st, &otype);
        assert_int_equal(st, statuses[i]);
        assert_non_null(otype);
    }
    anthv_error_kind("overloaded_error", 0, &st, &otype);
    assert_int_equal(st, 529);
    assert_string_equal(otype, "api_error");
    anthv_error_kind("request_too_large", 0, &st, &otype);
    assert_int_equal(st, 413);
    assert_string_equal(otype, "invalid_request_error");
    anthv_error_kind("rate_limit_error", 503, &st, &otype); /* the status wins */
    assert_int_equal(st, 503);
    assert_string_equal(otype, "rate_limit_error");
    /* unknown types go by the status */
    anthv_error_kind("bogus", 422, &st, &otype);
    assert_int_equal(st, 422);
    assert_string_equal(otype, "invalid_request_error");
    anthv_error_kind(NULL, 403, &st, &otype);
    assert_string_equal(otype, "permission_error");
    anthv_error_kind(NULL, 0, &st, &otype);
    assert_int_equal(st, 500);
    assert_string_equal(otype, "api_error");
    anthv_error_kind(NULL, 409, &st, &otype);
    assert_string_equal(otype, "api_error");
    assert_string_equal(anthv_error_type(422), "invalid_request_error");
    assert_string_equal(anthv_error_type(502), "api_error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_reasons_both_ways),
        cmocka_unit_test(error_types_both_ways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
