//! The end-to-end suite, run on every runtime: each scenario of `scenarios.rs` (im's livechat
//! dialect) and of `seed_exact.rs` (a server of exactly the seed's protocol) once with
//! im-tokio on a tokio runtime, once with im-async-std under async-std, once under smol.
//! Test names say the runtime and the scenario: `tokio_rt::soak_…`, `smol_rt::soak_…`.

mod scenarios;
mod seed_exact;

/// One test per scenario and runtime, from a single list.
macro_rules! on_every_runtime {
    ($($module:ident::$scenario:ident),* $(,)?) => {
        mod tokio_rt {
            $(
                #[test]
                fn $scenario() {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(super::$module::$scenario::<im_tokio::Tokio>());
                }
            )*
        }
        mod async_std_rt {
            $(
                #[test]
                fn $scenario() {
                    async_std::task::block_on(super::$module::$scenario::<im_async_std::AsyncIo>());
                }
            )*
        }
        mod smol_rt {
            $(
                #[test]
                fn $scenario() {
                    smol::block_on(super::$module::$scenario::<im_async_std::AsyncIo>());
                }
            )*
        }
    };
}

on_every_runtime!(
    scenarios::connect_auth_and_message,
    scenarios::server_close_reconnects_with_backoff_resubscribes_and_delivers_queued_in_order,
    scenarios::half_open_link_is_detected_within_interval_plus_timeout,
    scenarios::kicked_client_never_reconnects,
    scenarios::first_connect_refused_is_retried,
    scenarios::max_attempts_gives_up,
    scenarios::hostile_frames_are_errors_and_the_connection_survives,
    scenarios::close_ends_the_driver_and_nothing_reconnects,
    scenarios::dropping_the_last_handle_closes_the_client,
    scenarios::soak_2000_sends_across_10_restarts_arrive_exactly_once_in_order,
    scenarios::unanswered_heartbeats_are_a_dead_link_and_the_client_reconnects,
    scenarios::hung_websocket_handshake_times_out_and_is_retried,
    scenarios::reset_connection_is_reestablished,
    scenarios::round_trip_time_reflects_link_delay,
    scenarios::an_absent_reader_does_not_stall_the_link,
    scenarios::a_rejoin_resumes_from_the_last_message_seen_and_a_gap_is_reported,
    scenarios::event_capacity_at_its_extremes_delivers_everything,
    scenarios::a_sender_that_reads_no_events_meets_a_full_outbox_not_a_closed_client,
    seed_exact::seed_exact_ready_after_auth2_chats_at_most_once,
    seed_exact::seed_exact_offline_queue_goes_out_once_in_order_after_reconnect,
    seed_exact::seed_exact_half_open_link_is_detected_within_interval_plus_timeout,
    seed_exact::seed_exact_silent_server_is_a_dead_link_and_the_client_reconnects,
    seed_exact::seed_exact_kick_never_reconnects,
    seed_exact::seed_exact_flapping_server_backs_off,
    seed_exact::seed_exact_flapping_server_with_max_attempts_gives_up,
);
