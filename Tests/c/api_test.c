#define _DEFAULT_SOURCE
/* Tern C API tests: error paths (NULLs, bad paths, corrupt files, budgets, buffers, double
 * close), tokenize/detokenize, greedy generation against the golden tokens, cancel from another
 * thread, and two sessions on one model generating on two threads at once, each equal to its
 * single-threaded run. Built with -fsanitize=address,undefined by Tests/c/run.sh.
 * Usage: api_test MODEL.tern. Prints "N passed, M failed". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tern.h>

static int passed = 0, failed = 0;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; fprintf(stderr, "FAIL line %d: ", __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, " [%s]\n", tern_last_error()); } } while (0)

static const int32_t golden[24] = {15687, 236761, 669, 5279, 529, 506, 3640, 4184, 563, 7693, 236764, 622,
                                   236761, 236780, 236761, 108, 818, 5279, 529, 506, 3640, 15305, 563, 5860};
static const char *capital = "The capital of France is Paris. The capital of Germany is";

struct collect { int32_t ids[256]; size_t n; int stop_after; };
static int collect_cb(int32_t t, const char *piece, size_t len, void *u) {
    struct collect *c = u;
    (void)piece; (void)len;
    if (c->n < 256) c->ids[c->n++] = t;
    return c->stop_after > 0 && (int)c->n >= c->stop_after;
}

static tern_model *open_model(const char *path, uint64_t budget, tern_status *st) {
    tern_model_options o;
    tern_model_options_init(&o);
    o.path = path;
    o.mem_budget_bytes = budget;
    o.context = 512;
    tern_model *m = NULL;
    *st = tern_model_open(&o, &m);
    return m;
}

static tern_model *open_model_speculating(const char *path, int32_t speculation) {
    tern_model_options o;
    tern_model_options_init(&o);
    o.path = path;
    o.context = 512;
    o.speculation = speculation;
    tern_model *m = NULL;
    return tern_model_open(&o, &m) == TERN_OK ? m : NULL;
}

static void generate(tern_model *m, const char *prompt, size_t n, struct collect *c) {
    tern_session *s = NULL;
    tern_session_create(m, &s);
    tern_sampling g;
    tern_sampling_init(&g);
    memset(c, 0, sizeof *c);
    tern_status st = tern_generate(s, prompt, n, &g, collect_cb, c, NULL);
    if (st != TERN_OK) fprintf(stderr, "generate: %s: %s\n", tern_strerror(st), tern_last_error());
    tern_session_free(s);
}

struct job { tern_model *m; const char *prompt; struct collect out; };
static void *thread_main(void *p) {
    struct job *j = p;
    generate(j->m, j->prompt, 20, &j->out);
    return NULL;
}

/* Cancels once generation is under way (the first token was delivered): an event, not a
 * delay, so a slow machine cannot finish the 400 tokens first or cancel before the start. */
struct cancel_job { tern_session *s; int started; };
static int started_cb(int32_t t, const char *piece, size_t len, void *u) {
    (void)t; (void)piece; (void)len;
    __atomic_store_n(&((struct cancel_job *)u)->started, 1, __ATOMIC_RELEASE);
    return 0;
}
static void *cancel_main(void *p) {
    struct cancel_job *j = p;
    while (!__atomic_load_n(&j->started, __ATOMIC_ACQUIRE)) usleep(1000);
    tern_cancel(j->s);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s MODEL.tern\n", argv[0]); return 2; }
    const char *path = argv[1];
    tern_status st;

    /* Versions and strings. */
    CHECK(tern_api_version() == TERN_API_VERSION, "api version");
    CHECK(strlen(tern_version()) > 0, "version");
    CHECK(strcmp(tern_strerror(TERN_ERR_BUDGET), "memory budget too small") == 0, "strerror");
    CHECK(tern_strerror(-7) != NULL && tern_strerror(999) != NULL, "strerror out of range");

    /* NULLs and bad arguments. */
    tern_model *m = NULL;
    CHECK(tern_model_open(NULL, &m) == TERN_ERR_INVALID_ARGUMENT, "open NULL options");
    tern_model_options o;
    tern_model_options_init(&o);
    CHECK(tern_model_open(&o, NULL) == TERN_ERR_INVALID_ARGUMENT, "open NULL out");
    CHECK(tern_model_open(&o, &m) == TERN_ERR_INVALID_ARGUMENT && m == NULL, "open NULL path");
    o.path = "/nonexistent/model.tern";
    CHECK(tern_model_open(&o, &m) == TERN_ERR_IO && strstr(tern_last_error(), "/nonexistent/model.tern"), "missing file");
    o.path = argv[0]; /* this test program: a file, but not a checkpoint */
    CHECK(tern_model_open(&o, &m) == TERN_ERR_FORMAT && strstr(tern_last_error(), "not a .tern"), "not a checkpoint");
    o.path = path;
    o.struct_size = 3;
    CHECK(tern_model_open(&o, &m) == TERN_ERR_INVALID_ARGUMENT, "bad struct_size");
    tern_model_options_init(&o);
    o.path = path;
    CHECK(o.speculation == TERN_SPECULATE_AUTO, "speculation defaults to auto");
    o.speculation = 3;
    CHECK(tern_model_open(&o, &m) == TERN_ERR_INVALID_ARGUMENT && strstr(tern_last_error(), "tern_speculation"), "bad speculation");

    /* A corrupt copy (truncated) is an error, not a crash. */
    char tmp[] = "/tmp/tern-api-XXXXXX";
    int fd = mkstemp(tmp);
    FILE *src = fopen(path, "rb");
    char buf[65536];
    size_t got = fread(buf, 1, sizeof buf, src);
    fclose(src);
    CHECK(write(fd, buf, got / 2) > 0, "write truncated copy");
    close(fd);
    o.speculation = TERN_SPECULATE_OFF;
    o.path = tmp;
    CHECK(tern_model_open(&o, &m) == TERN_ERR_FORMAT, "truncated checkpoint");
    unlink(tmp);

    /* Budget below the minimum. */
    m = open_model(path, 8u << 20, &st);
    CHECK(st == TERN_ERR_BUDGET && m == NULL && strstr(tern_last_error(), "needs at least"), "budget too small");

    /* Calls on handles that are not live. */
    CHECK(tern_model_close(NULL) == TERN_OK, "close NULL");
    CHECK(tern_session_free(NULL) == TERN_OK, "free NULL");
    int dummy;
    CHECK(tern_model_close((tern_model *)&dummy) == TERN_ERR_INVALID_ARGUMENT, "close unknown handle");
    tern_session *s = NULL;
    CHECK(tern_session_create(NULL, &s) == TERN_ERR_INVALID_ARGUMENT && s == NULL, "session on NULL model");
    CHECK(tern_generate(NULL, "x", 1, NULL, NULL, NULL, NULL) == TERN_ERR_INVALID_ARGUMENT, "generate NULL session");
    CHECK(tern_cancel(NULL) == TERN_ERR_INVALID_ARGUMENT, "cancel NULL");

    /* A real model. */
    m = open_model(path, 0, &st);
    CHECK(st == TERN_OK && m != NULL, "open model");
    if (!m) { printf("%d passed, %d failed\n", passed, failed); return 1; }

    int32_t ids[64];
    size_t n = 0;
    CHECK(tern_tokenize(m, capital, strlen(capital), 1, ids, 64, &n) == TERN_OK && n == 13 && ids[0] == 2 && ids[12] == 563, "tokenize");
    CHECK(tern_tokenize(m, capital, strlen(capital), 1, ids, 5, &n) == TERN_ERR_BUFFER_TOO_SMALL && n == 13, "tokenize buffer too small");
    CHECK(tern_tokenize(m, capital, strlen(capital), 1, NULL, 0, &n) == TERN_ERR_BUFFER_TOO_SMALL && n == 13, "tokenize size query");
    CHECK(tern_tokenize(m, "\xff\xfe", 2, 0, ids, 64, &n) == TERN_ERR_INVALID_ARGUMENT, "tokenize invalid UTF-8");
    CHECK(tern_tokenize(m, NULL, 3, 0, ids, 64, &n) == TERN_ERR_INVALID_ARGUMENT, "tokenize NULL text");
    char text[256];
    size_t len = 0;
    CHECK(tern_detokenize(m, golden, 3, text, sizeof text, &len) == TERN_OK && strcmp(text, " Berlin. The") == 0, "detokenize");
    CHECK(tern_detokenize(m, golden, 3, text, 4, &len) == TERN_ERR_BUFFER_TOO_SMALL && len == 12, "detokenize too small");
    int32_t bad = 1 << 30;
    CHECK(tern_detokenize(m, &bad, 1, text, sizeof text, &len) == TERN_ERR_INVALID_ARGUMENT, "detokenize bad id");

    /* Greedy generation equals the golden tokens; stop from the callback; context full. */
    struct collect c;
    generate(m, capital, 24, &c);
    CHECK(c.n == 24 && memcmp(c.ids, golden, sizeof golden) == 0, "golden tokens (got %zu)", c.n);
    /* The same tokens plainly and with each kind of speculation (the default, above, is auto). */
    for (int32_t sp = TERN_SPECULATE_OFF; sp <= TERN_SPECULATE_LOOKUP; sp++) {
        tern_model *ms = open_model_speculating(path, sp);
        CHECK(ms != NULL, "open with speculation %d", sp);
        if (!ms) continue;
        struct collect cs;
        generate(ms, capital, 24, &cs);
        CHECK(cs.n == 24 && memcmp(cs.ids, golden, sizeof golden) == 0, "golden tokens with speculation %d", sp);
        tern_model_close(ms);
    }
    tern_session_create(m, &s);
    tern_sampling g;
    tern_sampling_init(&g);
    memset(&c, 0, sizeof c);
    c.stop_after = 5;
    size_t produced = 0;
    CHECK(tern_generate(s, capital, 24, &g, collect_cb, &c, &produced) == TERN_OK && produced == 5 && c.n == 5, "callback stops");
    CHECK(tern_generate(s, " and", 100000, &g, NULL, NULL, NULL) == TERN_ERR_CONTEXT_FULL, "context full");
    g.top_p = 0;
    CHECK(tern_generate(s, "x", 1, &g, NULL, NULL, NULL) == TERN_ERR_INVALID_ARGUMENT, "bad sampling");
    CHECK(tern_session_reset(s) == TERN_OK, "reset");
    tern_sampling_init(&g);
    memset(&c, 0, sizeof c);
    CHECK(tern_generate(s, capital, 24, &g, collect_cb, &c, NULL) == TERN_OK && memcmp(c.ids, golden, sizeof golden) == 0, "golden after reset");

    /* Continuing a session loses nothing: 12 tokens, then 12 more after an empty prompt, are the
     * 24 golden tokens. */
    tern_session_reset(s);
    memset(&c, 0, sizeof c);
    CHECK(tern_generate(s, capital, 12, &g, collect_cb, &c, NULL) == TERN_OK && c.n == 12, "first half");
    CHECK(tern_generate(s, "", 12, &g, collect_cb, &c, NULL) == TERN_OK && c.n == 24, "second half");
    CHECK(memcmp(c.ids, golden, sizeof golden) == 0, "continued generation equals one run");

    /* Cancel from another thread. */
    tern_session_reset(s);
    struct cancel_job cj = {s, 0};
    pthread_t ct;
    pthread_create(&ct, NULL, cancel_main, &cj);
    CHECK(tern_generate(s, "Once upon a time", 400, &g, started_cb, &cj, &produced) == TERN_ERR_CANCELLED && produced < 400,
          "cancel");
    pthread_join(ct, NULL);
    CHECK(tern_session_free(s) == TERN_OK, "free session");
    CHECK(tern_session_free(s) == TERN_ERR_INVALID_ARGUMENT, "double free detected");

    /* Two sessions, one model, two threads: each equals its single-threaded run. */
    struct job a = {m, capital, {{0}, 0, 0}}, b = {m, "Once upon a time, in a small village,", {{0}, 0, 0}};
    struct collect ra, rb;
    generate(m, a.prompt, 20, &ra);
    generate(m, b.prompt, 20, &rb);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, thread_main, &a);
    pthread_create(&tb, NULL, thread_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.out.n == 20 && memcmp(a.out.ids, ra.ids, sizeof(int32_t) * 20) == 0, "thread A equals its single run");
    CHECK(b.out.n == 20 && memcmp(b.out.ids, rb.ids, sizeof(int32_t) * 20) == 0, "thread B equals its single run");
    CHECK(memcmp(ra.ids, rb.ids, sizeof(int32_t) * 20) != 0, "different prompts, different outputs");

    /* The same under a memory budget (streamed weights shared by both sessions). */
    tern_model *mb = open_model(path, 160u << 20, &st);
    CHECK(st == TERN_OK && mb, "open with 160 MiB budget");
    if (mb) {
        a.m = b.m = mb;
        pthread_create(&ta, NULL, thread_main, &a);
        pthread_create(&tb, NULL, thread_main, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        CHECK(memcmp(a.out.ids, ra.ids, sizeof(int32_t) * 20) == 0 && memcmp(b.out.ids, rb.ids, sizeof(int32_t) * 20) == 0, "budgeted threads");
        CHECK(tern_model_close(mb) == TERN_OK, "close budgeted model");
    }

    /* Chat templates (API 2): Gemma 3 270M carries none, so the Gemma default applies. */
    {
        tern_chat_message msgs[2] = {{"system", "Be brief."}, {"user", "Hello"}};
        const char *want = "<bos><start_of_turn>user\nBe brief.\n\nHello<end_of_turn>\n<start_of_turn>model\n";
        size_t len = 0;
        CHECK(tern_chat_apply_template(m, NULL, msgs, 2, 1, NULL, 0, &len) == TERN_ERR_BUFFER_TOO_SMALL && len == strlen(want),
              "apply template: size query");
        char *buf = malloc(len + 1);
        CHECK(tern_chat_apply_template(m, NULL, msgs, 2, 1, buf, len + 1, &len) == TERN_OK && strcmp(buf, want) == 0,
              "apply template: the Gemma turns");
        CHECK(tern_chat_apply_template(m, NULL, msgs, 2, 1, buf, len, &len) == TERN_ERR_BUFFER_TOO_SMALL, "apply template: no room for the NUL");
        free(buf);
        char out[64];
        CHECK(tern_chat_apply_template(m, "{{ raise_exception('no system role') }}", msgs, 2, 1, out, sizeof out, &len) == TERN_ERR_TEMPLATE
              && strstr(tern_last_error(), "no system role"), "apply template: raise_exception");
        CHECK(tern_chat_apply_template(m, "a\n{% include 'x' %}", msgs, 2, 1, out, sizeof out, &len) == TERN_ERR_TEMPLATE
              && strstr(tern_last_error(), "line 2") && strstr(tern_last_error(), "include"), "apply template: unsupported construct");
        CHECK(tern_chat_apply_template(m, "{{ m }", msgs, 2, 1, out, sizeof out, &len) == TERN_ERR_TEMPLATE, "apply template: syntax error");
        CHECK(tern_chat_apply_template(m, NULL, NULL, 1, 1, out, sizeof out, &len) == TERN_ERR_INVALID_ARGUMENT, "apply template: NULL messages");
        tern_chat_message bad[1] = {{NULL, "x"}};
        CHECK(tern_chat_apply_template(m, NULL, bad, 1, 1, out, sizeof out, &len) == TERN_ERR_INVALID_ARGUMENT, "apply template: NULL role");
        tern_chat_message badutf[1] = {{"user", "\xff\xfe"}};
        CHECK(tern_chat_apply_template(m, NULL, badutf, 1, 1, out, sizeof out, &len) == TERN_ERR_INVALID_ARGUMENT, "apply template: bad UTF-8");
        CHECK(tern_chat_apply_template(NULL, NULL, msgs, 2, 1, out, sizeof out, &len) == TERN_ERR_INVALID_ARGUMENT, "apply template: NULL model");

        tern_session *cs = NULL;
        CHECK(tern_session_create(m, &cs) == TERN_OK, "chat session");
        tern_sampling greedy;
        tern_sampling_init(&greedy);
        struct collect t1 = {0}, t2 = {0}, again = {0};
        size_t n1 = 0, n2 = 0, n3 = 0;
        CHECK(tern_chat(cs, "Answer in one word.", "What color is the sky?", 12, &greedy, collect_cb, &t1, &n1) == TERN_OK && n1 > 0,
              "chat turn 1");
        CHECK(tern_chat(cs, NULL, "And grass?", 12, &greedy, collect_cb, &t2, &n2) == TERN_OK && n2 > 0, "chat turn 2");
        CHECK(tern_chat(cs, NULL, NULL, 12, &greedy, NULL, NULL, NULL) == TERN_ERR_INVALID_ARGUMENT, "chat NULL message");
        CHECK(tern_chat(cs, NULL, "\xc3", 12, &greedy, NULL, NULL, NULL) == TERN_ERR_INVALID_ARGUMENT, "chat bad UTF-8");
        CHECK(tern_session_reset(cs) == TERN_OK, "chat reset");
        CHECK(tern_chat(cs, "Answer in one word.", "What color is the sky?", 12, &greedy, collect_cb, &again, &n3) == TERN_OK
              && n3 == n1 && memcmp(again.ids, t1.ids, sizeof(int32_t) * n1) == 0, "chat after reset repeats turn 1");
        CHECK(tern_chat(NULL, NULL, "x", 1, NULL, NULL, NULL, NULL) == TERN_ERR_INVALID_ARGUMENT, "chat NULL session");
        CHECK(tern_session_free(cs) == TERN_OK, "free chat session");
    }

    CHECK(tern_model_close(m) == TERN_OK, "close model");
    CHECK(tern_model_close(m) == TERN_ERR_INVALID_ARGUMENT, "double close detected");
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
