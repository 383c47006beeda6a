//! The im chat demo on async-std: `cargo run -p im-async-std --example chat_async_std`, same story and
//! flags as im-tokio's (`-- --help`). The story lives in `im_tests::demo`.

#[async_std::main]
async fn main() -> std::io::Result<()> {
    im_tests::demo::run::<im_async_std::AsyncIo>(im_tests::demo::args_or_exit()).await
}
