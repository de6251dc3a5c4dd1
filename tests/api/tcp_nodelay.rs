//! Every PostgreSQL socket of a running `wadash serve` has `TCP_NODELAY`, read from the
//! sockets themselves: without it, a batch statement split into several TLS records waits
//! for the server's delayed ACK (40 ms steps) once enough connections are busy. sqlx 0.9.0
//! left it off; 0.9.1 sets it on every TCP connection it opens.

use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{ADMIN_PASSWORD, AUTH_TOKEN, Browser, ServeProcess, status_callback};

/// Inodes of the TCP sockets connected to `port` on the peer side, from the process's own
/// view of the TCP tables (`/proc/{pid}/net/tcp` and `tcp6`).
fn sockets_to_port(pid: u32, port: u16) -> Vec<u64> {
    let mut inodes = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st … inode (column 9)
            let (Some(remote), Some(state), Some(inode)) = (cols.get(2), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let remote_port = remote
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            // 01: ESTABLISHED.
            if remote_port == Some(port) && *state == "01" {
                inodes.extend(inode.parse::<u64>().ok());
            }
        }
    }
    inodes
}

/// The process's file descriptors that are the sockets `inodes`.
fn fds_of(pid: u32, inodes: &[u64]) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let inode: u64 = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            inodes
                .contains(&inode)
                .then(|| e.file_name().to_str()?.parse().ok())
                .flatten()
        })
        .collect()
}

#[sqlx::test(migrations = false)]
async fn every_postgresql_socket_of_wadash_serve_has_tcp_nodelay(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // The README's form of DATABASE_URL: TCP, no sslmode (TLS if the server offers it).
    let serve = ServeProcess::start(&opts, &[("TWILIO_AUTH_TOKEN", AUTH_TOKEN)]).await;
    let (pid, base) = (serve.pid, serve.base.clone());
    // Work that takes several connections at once: concurrent callbacks (the ingest lanes),
    // a login and a page (sessions, queries), and the live poller, which runs by itself.
    let client = reqwest::Client::new();
    let posts = (0..32u32).map(|i| {
        let p = status_callback(&format!("SM{:032x}", 0xc000 + i), "sent");
        let sig =
            wadash::twilio::signature::compute(AUTH_TOKEN.as_bytes(), &format!("{base}/sts"), &p);
        client
            .post(format!("{base}/sts"))
            .header("X-Twilio-Signature", sig)
            .form(&p)
            .send()
    });
    for r in futures_util::future::join_all(posts).await {
        assert_eq!(r.unwrap().status(), 204);
    }
    let mut b = Browser::new(&base);
    assert_eq!(b.login("admin", ADMIN_PASSWORD).await, 303);
    assert_eq!(b.get("/messages").await.0, 200);

    let inodes = sockets_to_port(pid, opts.get_port());
    let fds = fds_of(pid, &inodes);
    assert!(
        fds.len() >= 2,
        "wadash serve holds {} PostgreSQL sockets",
        fds.len()
    );
    let pidfd = pidfd_open(Pid::from_raw(pid as i32).unwrap(), PidfdFlags::empty()).unwrap();
    let mut checked = 0;
    for fd in &fds {
        // A duplicate of the child's socket: the same socket, so the same options. A pooled
        // connection may close between the scan and here (EBADF): nothing to check then.
        let socket = match pidfd_getfd(&pidfd, *fd, PidfdGetfdFlags::empty()) {
            Ok(s) => s,
            Err(rustix::io::Errno::BADF) => continue,
            Err(e) => panic!(
                "pidfd_getfd on fd {fd}: {e} (needs Linux 5.6+ and permission to trace the child)"
            ),
        };
        checked += 1;
        let nodelay = rustix::net::sockopt::tcp_nodelay(&socket).unwrap();
        assert!(
            nodelay,
            "PostgreSQL socket (fd {fd}) of wadash serve without TCP_NODELAY: {} of {} sockets checked",
            fds.iter().position(|f| f == fd).unwrap() + 1,
            fds.len()
        );
    }
    assert!(checked >= 2, "only {checked} sockets could be checked");
    drop(serve);
}
