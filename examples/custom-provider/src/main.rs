//! Portcullis with the Gitea provider: the stock command line plus one registration line.

fn main() -> std::process::ExitCode {
    portcullis::run(|registry| {
        registry.register_oauth(portcullis_example_custom_provider::GiteaFactory::new());
    })
}
