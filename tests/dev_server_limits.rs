//! The dev server under hostile clients: connections capped, slow or idle ones closed, counters
//! that made-up requests cannot grow, hundreds of clients at once served.

mod common;

use std::time::Duration;

use common::DevServer;

/// Sends `GET /v1/health` on a kept-alive connection and reads the whole answer.
fn health_kept_alive(s: &mut std::net::TcpStream) -> std::io::Result<String> {
    use std::io::{Read, Write};
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Ok(text);
            }
        }
    }
}

/// Whether the server closed `s` (an end of stream) within `within`.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    match s.read(&mut [0u8; 16]) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The dev server: bounded counters, a header timeout, a connection cap; ASS_ADMIN_KEY stays
// out of the child.

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_dev_servers_counters() {
    let dev = DevServer::start();
    let http = reqwest::Client::new();
    for i in 0..60 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let _ = http.request(method, format!("{}/v1/tokens", dev.base_url)).send().await.unwrap();
        let _ = http.get(format!("{}/made/up/{i}", dev.base_url)).send().await.unwrap();
    }
    let _ = http.get(format!("{}/v1/health", dev.base_url)).send().await.unwrap();
    let stats = dev.stats().await;
    let requests = stats["requests"].as_object().unwrap();
    assert!(requests.len() <= 2, "{requests:?}");
    assert_eq!(requests["(unmatched)"], 120, "{requests:?}");
    assert_eq!(requests["GET /v1/health"], 1, "{requests:?}");
}

#[test]
fn the_dev_server_closes_a_connection_whose_headers_are_too_slow() {
    use std::io::{Read, Write};
    let dev = DevServer::start_with(&["--header-timeout", "1s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let start = std::time::Instant::now();
    let closed = loop {
        // A byte at a time, never finishing the head: a slow-loris client.
        if s.write_all(b"a").is_err() {
            break true;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => panic!("the server answered an unfinished request"),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            }
            Err(_) => break true,
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    assert!(closed, "the connection was still open after 10 s");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    // A prompt client is served as before.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn the_dev_server_caps_open_connections() {
    use std::io::{Read, Write};
    let dev = DevServer::start_with(&["--max-connections", "2", "--header-timeout", "30s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let idle: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    third.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let err = third.read(&mut buf).expect_err("served beyond the cap");
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
    drop(idle);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn at_the_cap_idle_kept_alive_connections_make_room() {
    let dev = DevServer::start_with(&["--max-connections", "2", "--header-timeout", "30s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let mut idle: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    for s in &mut idle {
        assert!(health_kept_alive(s).unwrap().starts_with("HTTP/1.1 200"));
    }
    // Both slots are held by connections idle between requests: a third is served at once,
    // not after the 30 s header timeout.
    let start = std::time::Instant::now();
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(health_kept_alive(&mut third).unwrap().starts_with("HTTP/1.1 200"));
    assert!(start.elapsed() < Duration::from_secs(3), "served after {:?}", start.elapsed());
    assert!(
        idle.iter_mut().any(|s| closed_within(s, Duration::from_secs(2))),
        "no idle connection was closed"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let dev = DevServer::start_with(&["--header-timeout", "1s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    assert!(health_kept_alive(&mut s).unwrap().starts_with("HTTP/1.1 200"));
    let start = std::time::Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(10)), "still open after 10 s");
    assert!(start.elapsed() < Duration::from_secs(5), "closed after {:?}", start.elapsed());
}

#[test]
fn hundreds_of_simultaneous_connections_are_all_served() {
    // What the JS SDK does with `Promise.all` over 600 reads: a connection each, all at once.
    // Past the cap they wait in the accept queue; a queue that overflows drops SYNs, and the
    // client's retries come 1, 3, 7 s later.
    let dev = DevServer::start_with(&["--max-connections", "8"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let start = std::time::Instant::now();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let streams: Vec<_> = (0..600)
        .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap())
        .collect();
    let clients: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                health_kept_alive(&mut s).map(|a| a.starts_with("HTTP/1.1 200"))
            })
        })
        .collect();
    let served = clients.into_iter().filter_map(|c| c.join().ok()).filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(served, 600, "{served} of 600 served");
    assert!(start.elapsed() < Duration::from_secs(6), "all served after {:?}", start.elapsed());
}
