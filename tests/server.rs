//! `nasheed serve`: the real server on an ephemeral port, driven by a real HTTP client (ureq)
//! and, where a client must misbehave (a body that stalls), by a raw TCP socket.

mod common;
use common::*;

use common::http::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// A scratch index holding synthetic songs 1 and 2 (30 s each).
fn two_songs(name: &str) -> Scratch {
    indexed_songs(name, 1..=2, 30.0)
}

#[test]
fn scans_of_mp4_opus_and_wav_uploads_answer_what_the_cli_prints() {
    let s = Scratch::new("server-same");
    let song = s.path("song1.wav");
    write_song(&song, 1, 30.0);
    index(&s.db(), &[&song]);
    let server = Server::start(&s.db(), &[], false);
    for name in ["excerpt_video.mp4", "excerpt.opus", "excerpt_s16.wav"] {
        let path = fixtures().join(name);
        let shown = path.display().to_string();
        let out = run(&s.db(), &["scan", "--format", "jsonl", &shown]);
        assert_eq!(out.status.code(), Some(1), "{name}: the CLI finds it");
        let cli = json(String::from_utf8_lossy(&out.stdout).trim());
        let body = std::fs::read(&path).unwrap();
        let url = server.url(&format!(
            "/v1/scan?name={}",
            nasheed_harness::url_encode(&shown)
        ));
        let (status, text) = post(&url, &body, None);
        assert_eq!(status, 200, "{name}: {text}");
        assert_eq!(json(&text), cli, "{name}: the service and the CLI differ");
        assert_eq!(cli["matches"][0]["title"], "song1", "{name}");
    }
    // A request's min_confidence is applied, and a bad one is refused.
    let body = std::fs::read(fixtures().join("excerpt_s16.wav")).unwrap();
    let (status, _) = post(&server.url("/v1/scan?min_confidence=95"), &body, None);
    assert_eq!(status, 400);
    let (status, text) = post(&server.url("/v1/scan?min_confidence=1"), &body, None);
    assert_eq!(status, 200, "{text}");
    let conf = json(&text)["matches"][0]["confidence"].as_f64();
    assert!(conf.is_none_or(|c| c >= 1.0), "{text}");
    assert_eq!(server.metric("nasheed_scans_total"), Some(4.0));
}

#[test]
fn writes_need_the_token_and_are_off_without_one() {
    let s = two_songs("server-auth");
    let off = Server::start(&s.db(), &[], false);
    let (status, text) = post(&off.url("/v1/references?title=x"), b"RIFF", Some(TOKEN));
    assert_eq!(status, 403, "{text}");
    assert_eq!(json(&text)["error_kind"], "writes_off");
    drop(off);

    let server = Server::start(&s.db(), &[], true);
    // A whole upload is refused cleanly: the client reads the 401, not a reset connection.
    let audio = std::fs::read(s.path("ref1.wav")).unwrap();
    for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
        let (status, text) = post(&server.url("/v1/references?title=x"), &audio, token);
        assert_eq!(status, 401, "{token:?}: {text}");
        assert_eq!(delete(&server.url("/v1/references/1"), token).0, 401);
        assert_eq!(get(&server.url("/v1/packs"), token).0, 401);
        assert_eq!(post(&server.url("/v1/packs"), b"x", token).0, 401);
    }
    // Nothing changed; reads need no token.
    let (status, text) = get(&server.url("/v1/references"), None);
    assert_eq!(status, 200);
    assert_eq!(json(&text).as_array().map(Vec::len), Some(2), "{text}");
    // The token from a file works the same; a short one is refused at start.
    let file = s.path("token");
    std::fs::write(&file, "short\n").unwrap();
    let out = run(
        &s.db(),
        &["serve", "--token-file", &file.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 characters"));
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let s = two_songs("server-413");
    let server = Server::start(&s.db(), &["--max-body", "64K"], false);
    // Refused from the declared length, before the body is sent (a client sending it whole
    // would see the connection close under it).
    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    write!(
        tcp,
        "POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        200 << 10
    )
    .unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(json(body)["error_kind"], "too_large");
    // Without a Content-Length (chunked), the limit holds as the body streams in.
    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    write!(
        tcp,
        "POST /v1/scan HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'a'; 16 << 10];
    let mut status_line = String::new();
    for _ in 0..8 {
        if write!(tcp, "{:x}\r\n", chunk.len())
            .and_then(|_| tcp.write_all(&chunk))
            .and_then(|_| tcp.write_all(b"\r\n"))
            .is_err()
        {
            break; // the server answered and closed
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n");
    let _ = BufReader::new(&tcp).read_line(&mut status_line);
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    // A body within the limit is scanned.
    let ok = std::fs::read(fixtures().join("excerpt.opus")).unwrap();
    assert_eq!(post(&server.url("/v1/scan"), &ok, None).0, 200);
}

#[test]
fn garbage_and_empty_bodies_get_422_with_a_one_line_error() {
    let s = two_songs("server-422");
    let server = Server::start(&s.db(), &[], false);
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let png = std::fs::read(fixtures().join("image.png")).unwrap();
    for (what, body) in [
        ("garbage", &garbage[..]),
        ("png", &png[..]),
        ("empty", &[][..]),
    ] {
        let (status, text) = post(&server.url("/v1/scan?name=bad.mp4"), body, None);
        assert_eq!(status, 422, "{what}: {text}");
        let v = json(&text);
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("bad.mp4: "), "{what}: {error}");
        assert!(
            !error.contains('\n') && !error.contains("nasheed-upload"),
            "{what}: {error}"
        );
        assert_eq!(v["error_kind"], "undecodable", "{what}");
        assert_eq!(v["matches"].as_array().map(Vec::len), Some(0));
    }
    // The server is still there and still finds things.
    let ok = std::fs::read(fixtures().join("excerpt.mp3")).unwrap();
    let (status, text) = post(&server.url("/v1/scan"), &ok, None);
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        server.metric("nasheed_errors_total{kind=\"undecodable\"}"),
        Some(3.0)
    );
}

/// Opens a scan request whose body stalls after `sent` of `declared` bytes; the server holds
/// an upload slot for it until it completes or the deadline passes.
fn stalled_upload(server: &Server, head: &[u8], declared: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    write!(
        tcp,
        "POST /v1/scan?name=slow.wav HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    tcp.write_all(head).unwrap();
    tcp.flush().unwrap();
    let t0 = Instant::now();
    while server.metric("nasheed_uploads_in_flight") != Some(1.0) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the upload never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    tcp
}

#[test]
fn saturation_is_refused_with_503_and_retry_after() {
    let s = two_songs("server-503");
    let server = Server::start(&s.db(), &["--max-in-flight", "1"], false);
    let _slow = stalled_upload(&server, b"RIFF", 1 << 20);
    // The stalled upload is spooled in the server's temp folder (what the 408 and SIGTERM tests
    // see emptied).
    let t0 = Instant::now();
    while spooled(&s.path("")).len() != 1 {
        assert!(t0.elapsed() < Duration::from_secs(20), "nothing spooled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = std::fs::read(fixtures().join("excerpt.mp3")).unwrap();
    let resp = agent()
        .post(&server.url("/v1/scan"))
        .send(&body[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Reads are not uploads: they still answer.
    assert_eq!(get(&server.url("/healthz"), None).0, 200);
    assert_eq!(
        server.metric("nasheed_errors_total{kind=\"busy\"}"),
        Some(1.0)
    );
}

#[test]
fn a_stalled_upload_times_out_with_408() {
    let s = two_songs("server-408");
    let server = Server::start(&s.db(), &["--timeout", "1"], false);
    let mut slow = stalled_upload(&server, b"RIFF", 1 << 20);
    let mut answer = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = BufReader::new(&mut slow).read_line(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(server.metric("nasheed_uploads_in_flight"), Some(0.0));
    assert_eq!(spooled(&s.path("")), Vec::<String>::new());
}

#[test]
fn a_reference_added_over_http_is_found_by_the_next_scan_and_removal_undoes_it() {
    let s = two_songs("server-add");
    let song3 = s.path("song3.wav");
    write_song(&song3, 3, 30.0);
    let clip = s.path("clip3.wav");
    let rate = 44100;
    let audio = nasheed_harness::synth::song(3, 30.0, rate);
    nasheed_harness::synth::write_wav(
        &clip,
        &audio[8 * rate as usize..16 * rate as usize],
        rate,
        1,
    )
    .unwrap();
    let clip = std::fs::read(&clip).unwrap();
    let server = Server::start(&s.db(), &[], true);
    let scan = || {
        let (status, text) = post(&server.url("/v1/scan"), &clip, None);
        assert_eq!(status, 200, "{text}");
        json(&text)["matches"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(scan().is_empty(), "song 3 is not indexed yet");

    let body = std::fs::read(&song3).unwrap();
    let url = server.url("/v1/references?title=Song%20three&name=song3.wav&group=g3&language=ar");
    let (status, text) = post(&url, &body, Some(TOKEN));
    assert_eq!(status, 201, "{text}");
    let added = json(&text);
    assert_eq!(added["added"], true);
    assert_eq!(added["track"]["title"], "Song three");
    assert_eq!(added["track"]["path"], "song3.wav");
    assert_eq!(added["track"]["meta"]["group"], "g3");
    let sha = added["track"]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(sha.len(), 64);

    let found = scan();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["title"], "Song three");
    assert_eq!(found[0]["meta"]["language"], "ar");
    assert!((found[0]["ref_start_s"].as_f64().unwrap_or(0.0) - 8.0).abs() < 0.2);

    // The same content again: not added twice.
    let (status, text) = post(&url, &body, Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["added"], false);
    // Listed, by SHA-256 prefix too.
    let (status, text) = get(&server.url(&format!("/v1/references/{}", &sha[..12])), None);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["title"], "Song three");
    assert_eq!(get(&server.url("/v1/references/999"), None).0, 404);
    // Not audio: 422, nothing stored.
    let (status, text) = post(
        &server.url("/v1/references?title=x"),
        b"not audio",
        Some(TOKEN),
    );
    assert_eq!(status, 422, "{text}");

    let (status, text) = delete(
        &server.url(&format!("/v1/references/{}", &sha[..16])),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{text}");
    assert!(scan().is_empty(), "removed, yet still found");
    assert_eq!(
        delete(
            &server.url(&format!("/v1/references/{}", &sha[..16])),
            Some(TOKEN)
        )
        .0,
        404
    );
}

#[test]
fn packs_go_out_and_come_in_over_http() {
    let s = two_songs("server-packs");
    let server = Server::start(&s.db(), &[], true);
    let resp = agent()
        .get(&server.url("/v1/packs"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let pack = resp.into_body().read_to_vec().unwrap();
    assert!(pack.len() > 1000);

    // Into a new index, created by a server with a token and --allow-empty: empty, it is
    // unhealthy and refuses scans rather than calling every upload clean.
    let empty = Scratch::new("server-packs-empty");
    let other = Server::start(&empty.db(), &["--allow-empty"], true);
    let (status, text) = get(&other.url("/healthz"), None);
    assert_eq!(status, 503, "{text}");
    assert_eq!(json(&text)["status"], "empty");
    let clip = std::fs::read(fixtures().join("excerpt.mp3")).unwrap();
    let (status, text) = post(&other.url("/v1/scan"), &clip, None);
    assert_eq!(status, 503, "{text}");
    assert_eq!(json(&text)["error_kind"], "empty_index");

    let (status, text) = post(&other.url("/v1/packs"), b"NSHPACK garbage", Some(TOKEN));
    assert_eq!(status, 422, "{text}");
    let (status, text) = post(&other.url("/v1/packs"), &pack, Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["added"], 2);
    assert_eq!(get(&other.url("/healthz"), None).0, 200);
    let (status, text) = post(&other.url("/v1/scan"), &clip, None);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["matches"][0]["title"], "ref1");
}

#[test]
fn sigterm_during_a_scan_lets_it_complete_and_exits_0() {
    let s = Scratch::new("server-term");
    let song = s.path("song1.wav");
    write_song(&song, 1, 30.0);
    index(&s.db(), &[&song]);
    let mut server = Server::start(&s.db(), &[], false);
    let body = std::fs::read(fixtures().join("excerpt_s16.wav")).unwrap();
    let half = body.len() / 2;
    let mut tcp = stalled_upload(&server, &body[..half], body.len());
    // SIGTERM while the request is in flight.
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(200));
    tcp.write_all(&body[half..]).unwrap();
    tcp.flush().unwrap();
    let mut response = String::new();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let record = json(response.split("\r\n\r\n").nth(1).unwrap_or_default());
    assert_eq!(record["matches"][0]["title"], "song1", "{record}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the server did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(spooled(&s.path("")), Vec::<String>::new());
    // New connections are refused once it is gone.
    assert!(TcpStream::connect(server.addr()).is_err());
}
