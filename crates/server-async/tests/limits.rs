//! `chat-async` at the machine's limits: out of file descriptors, out of
//! threads, and a long churn (bodies in `chat_testkit::limits`, shared with
//! `chat-sync`).

const BIN: &str = env!("CARGO_BIN_EXE_chat-async");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_backs_off_out_of_descriptors() {
    chat_testkit::limits::accept_backs_off_out_of_descriptors(BIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_no_trace() {
    chat_testkit::limits::churn_leaves_no_trace(BIN, chat_testkit::limits::CHURN_CYCLES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queues_stay_within_the_bound() {
    chat_testkit::queues::full_queues_stay_within_the_bound(BIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_queue_goes_first() {
    chat_testkit::queues::the_largest_queue_goes_first(BIN).await;
}
