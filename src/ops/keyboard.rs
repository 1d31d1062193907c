//! Keys in the live view: p pause, r resume, + ×2, - ×0.5, s stop.
//!
//! Only when stdin is a terminal. The terminal is switched to non-canonical mode without echo
//! (termios: ICANON and ECHO off), keeping ISIG and output processing, so Ctrl-C still reaches
//! the run's signal handler as SIGINT and the live view's lines keep their carriage returns — a
//! full raw mode would turn Ctrl-C into a key and break the other output. The previous settings
//! are restored when the run ends, after Ctrl-C too (the signal handler lets the run end
//! normally), and by the guard's Drop on an error path.

use super::{Command, Steer};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct Keyboard {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    saved: Option<libc::termios>,
}

/// The command a key stands for.
pub fn command_for(key: u8) -> Option<Command> {
    Some(match key {
        b'p' | b'P' => Command::Pause,
        b'r' | b'R' => Command::Resume,
        b'+' | b'=' => Command::Scale(2.0),
        b'-' | b'_' => Command::Scale(0.5),
        b's' | b'S' => Command::Stop,
        _ => return None,
    })
}

impl Keyboard {
    /// Starts reading keys when stdin is a terminal; None otherwise.
    pub fn start(steer: Arc<Steer>) -> Option<Keyboard> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a valid, zero-initialized termios.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let mut raw = t;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            t
        };
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::Builder::new()
            .name("keyboard".into())
            .spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    let mut pfd = libc::pollfd {
                        fd: 0,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll on one valid pollfd; read into a 1-byte local buffer.
                    let ready = unsafe { libc::poll(&mut pfd, 1, 200) };
                    if ready <= 0 || pfd.revents & libc::POLLIN == 0 {
                        if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                            return;
                        }
                        continue;
                    }
                    let mut b = [0u8; 1];
                    let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), 1) };
                    if n <= 0 {
                        return;
                    }
                    if let Some(cmd) = command_for(b[0]) {
                        let _ = steer.apply(cmd, "keyboard");
                    }
                }
            })
            .ok();
        Some(Keyboard {
            done,
            thread,
            saved: Some(saved),
        })
    }

    /// Stops reading and restores the terminal.
    pub fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.saved.take() {
            // SAFETY: restores the settings read by tcgetattr on the same fd.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}

impl Drop for Keyboard {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_commands() {
        assert_eq!(command_for(b'p'), Some(Command::Pause));
        assert_eq!(command_for(b'r'), Some(Command::Resume));
        assert_eq!(command_for(b'+'), Some(Command::Scale(2.0)));
        assert_eq!(command_for(b'-'), Some(Command::Scale(0.5)));
        assert_eq!(command_for(b's'), Some(Command::Stop));
        assert_eq!(command_for(b'x'), None);
    }
}
