//! An append-only list of JSON texts, one per completed second, for the live page's board: what
//! `GET /api/state?from=N` and `GET /api/intervals?from=N` serve. A run keeps every second (a
//! page opened an hour in draws the whole run), so the texts go to a file beside the run's other
//! files, unlinked as soon as it is open: the process keeps 8 bytes per second in memory however
//! long it runs (a soak found the board's in-memory JSON growing ~15 kB a second, 50 MB an hour),
//! and nothing is left on disk when it exits, however it exits. Without a directory (a watcher),
//! or when the file cannot be made or written, the texts stay in memory — still compact text, not
//! JSON trees.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct Spill {
    /// The items `0..on_file` live in the file, `[0, file_len)`.
    file: Option<File>,
    /// A path still to remove (where an open file cannot be unlinked).
    path: Option<PathBuf>,
    file_len: u64,
    on_file: usize,
    /// New items go to the file (false: it could not be made, or a write failed).
    writable: bool,
    /// The items from `on_file` on, each followed by a comma.
    mem: Vec<u8>,
    /// End of each item (and its comma): in the file for the first `on_file`, then in `mem`.
    ends: Vec<u64>,
}

impl Spill {
    /// Items kept in memory.
    pub fn in_memory() -> Spill {
        Spill::default()
    }

    /// Items kept in an unlinked file in `dir` (in memory when it cannot be made).
    pub fn in_dir(dir: &Path, name: &str) -> Spill {
        let path = dir.join(format!(".{name}-{}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path);
        match file {
            Ok(f) => {
                let removed = std::fs::remove_file(&path).is_ok();
                Spill {
                    file: Some(f),
                    path: (!removed).then_some(path),
                    file_len: 0,
                    on_file: 0,
                    writable: true,
                    mem: Vec::new(),
                    ends: Vec::new(),
                }
            }
            Err(_) => Spill::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether the items go to a file (false: in memory).
    pub fn on_disk(&self) -> bool {
        self.writable && self.file.is_some()
    }

    /// Appends one item (a JSON text).
    pub fn push(&mut self, text: &str) {
        let mut b = Vec::with_capacity(text.len() + 1);
        b.extend_from_slice(text.as_bytes());
        b.push(b',');
        if self.writable {
            if let Some(f) = self.file.as_mut() {
                let written = f
                    .seek(SeekFrom::Start(self.file_len))
                    .and_then(|_| f.write_all(&b));
                if written.is_ok() {
                    self.file_len += b.len() as u64;
                    self.on_file += 1;
                    self.ends.push(self.file_len);
                    return;
                }
            }
            // A full or vanished disk: what is on file stays there (read as before), the rest
            // goes to memory.
            self.writable = false;
        }
        self.mem.extend_from_slice(&b);
        self.ends.push(self.mem.len() as u64);
    }

    /// The items from `from` on as one JSON array (`[]` past the end). Items on a file that can
    /// no longer be read are left out.
    pub fn array_from(&mut self, from: usize) -> String {
        let mut out = String::from("[");
        let from = from.min(self.len());
        if from < self.on_file {
            let start = if from == 0 { 0 } else { self.ends[from - 1] };
            let mut b = vec![0u8; (self.file_len - start) as usize];
            let read = self.file.as_mut().map(|f| {
                f.seek(SeekFrom::Start(start))
                    .and_then(|_| f.read_exact(&mut b))
            });
            if let Some(Ok(())) = read {
                out.push_str(&String::from_utf8_lossy(&b));
            }
        }
        let mem_from = from.max(self.on_file);
        if mem_from < self.len() {
            let start = if mem_from == self.on_file {
                0
            } else {
                self.ends[mem_from - 1] as usize
            };
            out.push_str(&String::from_utf8_lossy(&self.mem[start..]));
        }
        if out.ends_with(',') {
            out.pop();
        }
        out.push(']');
        out
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.file.take();
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(s: &mut Spill, n: usize) {
        for i in 0..n {
            s.push(&format!("{{\"t\":{i}}}"));
        }
    }

    fn check(s: &mut Spill, n: usize) {
        assert_eq!(s.len(), n);
        for from in [0, 1, n / 2, n.saturating_sub(1), n, n + 5] {
            let v: Vec<serde_json::Value> = serde_json::from_str(&s.array_from(from)).unwrap();
            let want: Vec<u64> = (from.min(n) as u64..n as u64).collect();
            let got: Vec<u64> = v.iter().map(|x| x["t"].as_u64().unwrap()).collect();
            assert_eq!(got, want, "from {from}");
        }
    }

    #[test]
    fn in_memory_serves_every_suffix() {
        let mut s = Spill::in_memory();
        assert_eq!(s.array_from(0), "[]");
        fill(&mut s, 10);
        assert!(!s.on_disk());
        check(&mut s, 10);
    }

    #[test]
    fn on_an_unlinked_file_serves_every_suffix_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::in_dir(dir.path(), "live-series");
        assert!(s.on_disk());
        // unlinked at once: the directory shows nothing, during the run or after it
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        fill(&mut s, 1000);
        check(&mut s, 1000);
        // the items are on the file, not in memory
        assert!(s.mem.is_empty());
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_that_cannot_hold_it_keeps_the_items_in_memory() {
        let mut s = Spill::in_dir(Path::new("/nonexistent/flashcrowd"), "live-series");
        assert!(!s.on_disk());
        fill(&mut s, 7);
        check(&mut s, 7);
    }

    #[test]
    fn a_write_failure_keeps_what_is_on_file_and_the_rest_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::in_dir(dir.path(), "live-series");
        fill(&mut s, 5);
        // a disk gone read-only: the file can be read, not written
        let mut kept = Vec::new();
        let f = s.file.as_mut().unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut kept).unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, &kept).unwrap();
        s.file = Some(std::fs::File::open(&path).unwrap());
        for i in 5..9 {
            s.push(&format!("{{\"t\":{i}}}"));
        }
        assert!(!s.on_disk());
        check(&mut s, 9);
    }
}
