/* An alternate signal stack for the fuzz targets' main thread, so that a stack
 * overflow is reported as a crash with its input saved instead of killing the
 * process silently.
 *
 * libFuzzer handles SIGSEGV on the stack that faulted, unless a handler already
 * in place asked for SA_ONSTACK (it keeps that flag: see SetSigaction in
 * libFuzzer's FuzzerUtilPosix.cpp). Under a sanitizer the sanitizer sets up the
 * alternate stack; these builds have none (no sanitizer on stable Rust), and
 * Rust's own overflow handler is never installed because libFuzzer, not Rust,
 * owns main. This constructor, run before main, gives the main thread an
 * alternate stack and leaves SIGSEGV at its default action with SA_ONSTACK set,
 * so libFuzzer's handler, installed later, runs there.
 *
 * Linked into the fuzz binaries only (fuzz/build.rs). In a Rust-owned main (the
 * tests) Rust installs its own handler over the default action, as usual. */
#include <signal.h>
#include <stdlib.h>

#define ALT_STACK_SIZE (1 << 20)

__attribute__((constructor)) static void cairn_fuzz_altstack(void) {
    stack_t ss = {0};
    ss.ss_sp = malloc(ALT_STACK_SIZE);
    if (ss.ss_sp == NULL) {
        return;
    }
    ss.ss_size = ALT_STACK_SIZE;
    if (sigaltstack(&ss, NULL) != 0) {
        return;
    }
    struct sigaction sa = {0};
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}
