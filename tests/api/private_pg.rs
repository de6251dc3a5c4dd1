//! A PostgreSQL server of the test's own (initdb into a temporary directory, its own port),
//! for tests that freeze or kill the database: never the machine's main server.

use std::path::PathBuf;
use std::process::Command;

use sqlx::postgres::PgConnectOptions;

use crate::helpers::free_port;

pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_root: bool,
}

/// The newest installed server's `bin` directory (Debian: /usr/lib/postgresql/N/bin).
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql")
        .1
}

impl PrivatePostgres {
    /// Creates and starts a throw-away cluster (no fsync: nothing here needs to survive).
    pub fn start() -> Self {
        let bin = server_bin();
        let dir = std::env::temp_dir().join(format!(
            "wadash-pg-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if as_root {
            let ok = Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the private cluster's directory");
        }
        let pg = Self {
            dir,
            bin,
            port: free_port(),
            as_root,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            pg.port,
            pg.dir.display()
        );
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                pg.dir.join("log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }

    fn postmaster(&self) -> i32 {
        let pidfile = self.dir.join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(pidfile).expect("postmaster.pid");
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// The postmaster and every process it started (backends, checkpointer, WAL writer…).
    fn processes(&self) -> Vec<i32> {
        let postmaster = self.postmaster();
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid …"; comm may hold spaces, so read after its ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    fn signal(&self, signal: &str, pids: &[i32]) {
        let mut cmd = Command::new("kill");
        cmd.arg(format!("-{signal}"));
        for p in pids {
            cmd.arg(p.to_string());
        }
        // A short-lived child may be gone by now: that is fine.
        let _ = cmd.stderr(std::process::Stdio::null()).status();
    }

    /// Stops every process of the server (SIGSTOP): connections stay open and nothing is
    /// answered, as when a database host hangs.
    pub fn freeze(&self) {
        // The postmaster first, so that it starts no process after the children are listed.
        self.signal("STOP", &[self.postmaster()]);
        self.signal("STOP", &self.processes());
    }

    pub fn thaw(&self) {
        let mut pids = self.processes();
        pids.reverse();
        self.signal("CONT", &pids);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.thaw();
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
