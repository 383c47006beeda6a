//! The end-to-end suite, run on every runtime: each scenario of `scenarios.rs` once with
//! im-tokio on a tokio runtime, once with im-async-std under async-std, once under smol.
//! Test names say the runtime and the scenario: `tokio_rt::soak_…`, `smol_rt::soak_…`.

mod scenarios;

/// One test per scenario and runtime, from a single list.
macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        mod tokio_rt {
            $(
                #[test]
                fn $scenario() {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(super::scenarios::$scenario::<im_tokio::Tokio>());
                }
            )*
        }
        mod async_std_rt {
            $(
                #[test]
                fn $scenario() {
                    async_std::task::block_on(super::scenarios::$scenario::<im_async_std::AsyncIo>());
                }
            )*
        }
        mod smol_rt {
            $(
                #[test]
                fn $scenario() {
                    smol::block_on(super::scenarios::$scenario::<im_async_std::AsyncIo>());
                }
            )*
        }
    };
}

on_every_runtime!(
    connect_auth_and_message,
    server_close_reconnects_with_backoff_resubscribes_and_delivers_queued_in_order,
    half_open_link_is_detected_within_interval_plus_timeout,
    kicked_client_never_reconnects,
    first_connect_refused_is_retried,
    max_attempts_gives_up,
    hostile_frames_are_errors_and_the_connection_survives,
    close_ends_the_driver_and_nothing_reconnects,
    dropping_the_last_handle_closes_the_client,
    soak_2000_sends_across_10_restarts_arrive_exactly_once_in_order,
    unanswered_heartbeats_are_a_dead_link_and_the_client_reconnects,
    hung_websocket_handshake_times_out_and_is_retried,
    reset_connection_is_reestablished,
    round_trip_time_reflects_link_delay,
    an_absent_reader_does_not_stall_the_link,
);
