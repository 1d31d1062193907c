use clap::Parser;
use std::process::ExitCode;

// mimalloc is built without transparent huge pages (the crate's `no_thp` feature: it does not
// madvise its arenas MADV_HUGEPAGE), and `main` turns THP off for the process as well, for
// kernels whose THP mode is `always`. A huge-page fault clears 2 MiB (and with `defrag` at
// `madvise` may compact memory first) on the thread that touched it: on a shard thread that is a
// stall of milliseconds in the open model's schedule. See docs/performance.md ("Open model: the
// lag spikes").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integer arguments only; an error (an old kernel)
    // leaves THP as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let cli = match flashcrowd::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match flashcrowd::commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("flashcrowd: {f}");
            ExitCode::from(f.code())
        }
    }
}
