//! A real SMTP server on loopback (mailin-embedded) that keeps what it receives.

use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, response};

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl ReceivedMail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parsable message")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }
}

#[derive(Clone, Default)]
struct Collector {
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    current: Option<ReceivedMail>,
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(ReceivedMail {
            to: to.to_vec(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(mail) = self.current.as_mut() {
            mail.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(mail) = self.current.take() {
            self.inbox.lock().unwrap().push(mail);
        }
        response::OK
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }
}

pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Starts on `listener`; the server thread lives as long as the test process.
    pub fn start_on(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let collector = Collector::default();
        let inbox = Arc::clone(&collector.inbox);
        let mut server = Server::new(collector);
        server.with_name("smtp.test").with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, inbox }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.inbox.lock().unwrap().clone()
    }
}

/// What a scripted server does with a message once it has received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    /// Answer this code (4xx: try later; 5xx: never).
    Code(u16),
    /// Close the connection instead of answering.
    Drop,
    /// Never answer.
    Stall,
}

/// A real SMTP peer on loopback that answers each message as its script says
/// (then accepts everything), to test outages and misbehaving servers.
pub struct ScriptedSmtp {
    pub port: u16,
    accepted: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Messages that reached the end of DATA, whatever the answer.
    pub delivered_attempts: Arc<Mutex<usize>>,
}

impl ScriptedSmtp {
    pub fn start(script: Vec<Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(Mutex::new(0));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let (kept, counted) = (Arc::clone(&accepted), Arc::clone(&attempts));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, counted, script) =
                    (Arc::clone(&kept), Arc::clone(&counted), Arc::clone(&script));
                std::thread::spawn(move || {
                    let _ = converse(stream, &kept, &counted, &script);
                });
            }
        });
        Self {
            port,
            accepted,
            delivered_attempts: attempts,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn accepted(&self) -> Vec<Vec<u8>> {
        self.accepted.lock().unwrap().clone()
    }
}

fn converse(
    stream: std::net::TcpStream,
    accepted: &Mutex<Vec<Vec<u8>>>,
    attempts: &Mutex<usize>,
    script: &Mutex<std::collections::VecDeque<Answer>>,
) -> io::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 scripted.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            writer.write_all(b"250-scripted.test\r\n250 8BITMIME\r\n")?;
        } else if command.starts_with("DATA") {
            writer.write_all(b"354 go on\r\n")?;
            let mut message = Vec::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                message.extend_from_slice(line.as_bytes());
            }
            *attempts.lock().unwrap() += 1;
            let answer = script.lock().unwrap().pop_front().unwrap_or(Answer::Accept);
            match answer {
                Answer::Accept => {
                    accepted.lock().unwrap().push(message);
                    writer.write_all(b"250 accepted\r\n")?;
                }
                Answer::Code(code) => {
                    writer.write_all(format!("{code} scripted answer\r\n").as_bytes())?
                }
                Answer::Drop => return Ok(()),
                Answer::Stall => loop {
                    std::thread::park();
                },
            }
        } else if command.starts_with("QUIT") {
            writer.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            // HELO, MAIL, RCPT, RSET, NOOP: all fine.
            writer.write_all(b"250 OK\r\n")?;
        }
    }
}
