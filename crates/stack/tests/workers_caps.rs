//! Realtime caps in a stack of two processes are one count across both, as Supabase counts per
//! tenant: connections spread over both workers hit the cap at its configured value, a place
//! freed on one worker serves the other, and joins per second are counted together.

mod realtime_support;
mod workers_support;

use realtime_support::connect;
use std::time::Duration;
use syncstorm_stack::realtime::caps::now_secs;
use syncstorm_wire::phoenix::Vsn;
use workers_support::{metric, metrics_when, two_workers, websocket};

#[tokio::test]
async fn the_connection_cap_counts_sockets_on_every_worker() {
    let stack = two_workers(|c| c.plan.realtime.max_connections = 5).await;
    let one = websocket(&stack.worker_urls[0], &stack.anon_key);
    let two = websocket(&stack.worker_urls[1], &stack.anon_key);
    let mut on_one = Vec::new();
    for _ in 0..3 {
        on_one.push(connect(&one, Vsn::V1).await.expect("a place on worker 1"));
    }
    let mut on_two = Vec::new();
    for _ in 0..2 {
        on_two.push(connect(&two, Vsn::V1).await.expect("a place on worker 2"));
    }
    assert_eq!(
        connect(&two, Vsn::V1).await.err(),
        Some(403),
        "the 6th socket"
    );
    assert_eq!(
        connect(&one, Vsn::V1).await.err(),
        Some(403),
        "on either worker"
    );
    // Each worker reports its own sockets, so the probes' sum is the stack's total.
    let connections = "syncstorm_realtime_connections";
    let page = metrics_when(&stack.metrics_urls[1], |p| {
        metric(p, connections) == Some(2.0)
    })
    .await;
    assert_eq!(
        metric(&page, "syncstorm_realtime_connections_refused_cap_total"),
        Some(1.0)
    );
    on_one.pop().unwrap().close().await;
    metrics_when(&stack.metrics_urls[0], |p| {
        metric(p, connections) == Some(2.0)
    })
    .await;
    on_two.push(
        connect(&two, Vsn::V1)
            .await
            .expect("worker 1's freed place, on worker 2"),
    );
    assert_eq!(connect(&two, Vsn::V1).await.err(), Some(403), "full again");
    for client in on_one.into_iter().chain(on_two) {
        client.close().await;
    }
    // Every closed socket gave its place back: the whole cap is free again.
    for url in &stack.metrics_urls {
        metrics_when(url, |p| metric(p, connections) == Some(0.0)).await;
    }
    let mut again = Vec::new();
    for i in 0..5 {
        let url = if i % 2 == 0 { &one } else { &two };
        again.push(connect(url, Vsn::V1).await.expect("no place leaked"));
    }
    for client in again {
        client.close().await;
    }
    stack.stop().await.unwrap();
}

/// Runs `burst` from the start of a second until it fits inside that second (at most 5 tries).
async fn within_one_second<F, Fut, T>(mut burst: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..5 {
        let this_second = now_secs();
        while now_secs() == this_second {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = now_secs();
        let out = burst().await;
        if now_secs() == before {
            return out;
        }
    }
    panic!("could not fit the burst inside one second in five tries");
}

#[tokio::test]
async fn joins_per_second_are_counted_across_workers() {
    let stack = two_workers(|c| c.plan.realtime.joins_per_second = 3).await;
    let urls = [
        websocket(&stack.worker_urls[0], &stack.anon_key),
        websocket(&stack.worker_urls[1], &stack.anon_key),
    ];
    // Joins alternate between a socket on each worker; three fit in a second, the fourth —
    // whichever worker takes it — is refused and its socket dropped.
    let (accepted, refused_on, reason) = within_one_second(|| async {
        let mut clients = [
            connect(&urls[0], Vsn::V1).await.unwrap(),
            connect(&urls[1], Vsn::V1).await.unwrap(),
        ];
        for i in 0..6 {
            let client = &mut clients[i % 2];
            client.join(&format!("realtime:g{i}"), vec![], None).await;
            let reply = client.recv().await;
            if let Some(reason) = reply.payload["response"]["reason"].as_str() {
                let closed = client.recv_within(Duration::from_secs(5)).await.is_none();
                assert!(closed, "the socket is dropped after the refusal");
                return (i, i % 2 + 1, reason.to_string());
            }
        }
        panic!("six joins over two workers were all accepted under a limit of three per second");
    })
    .await;
    assert_eq!(accepted, 3);
    assert_eq!(refused_on, 2, "the fourth join went to worker 2");
    assert_eq!(
        reason,
        "ClientJoinRateLimitReached: Too many joins per second"
    );
    stack.stop().await.unwrap();
}

/// This test process's `stack-worker` child.
fn worker_child() -> i32 {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after its `)`.
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid = tail.split_whitespace().nth(1);
        if head.ends_with("(stack-worker") && ppid == Some(me.as_str()) {
            return head.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no stack-worker child of this process");
}

#[tokio::test]
async fn a_killed_workers_places_are_given_back() {
    let stack = two_workers(|c| c.plan.realtime.max_connections = 2).await;
    let one = websocket(&stack.worker_urls[0], &stack.anon_key);
    let two = websocket(&stack.worker_urls[1], &stack.anon_key);
    let _held = [
        connect(&two, Vsn::V1).await.unwrap(),
        connect(&two, Vsn::V1).await.unwrap(),
    ];
    assert_eq!(connect(&one, Vsn::V1).await.err(), Some(403));
    let pid = nix::unistd::Pid::from_raw(worker_child());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    // The parent sees the exit and frees both places; until then worker 1 refuses.
    let mut taken = Vec::new();
    for _ in 0..500 {
        match connect(&one, Vsn::V1).await {
            Ok(client) => taken.push(client),
            Err(status) => assert_eq!(status, 403),
        }
        if taken.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        taken.len(),
        2,
        "the dead worker's places were never given back"
    );
    assert_eq!(connect(&one, Vsn::V1).await.err(), Some(403), "and no more");
    for client in taken {
        client.close().await;
    }
    stack.stop().await.unwrap();
}
