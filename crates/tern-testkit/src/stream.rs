//! A blocking TURN client over a byte stream (TCP or TLS, RFC 8656 §12.5, RFC 6062): one
//! `tern_proto::client::Client`, frames cut with its `Deframer`, messages that are not the answer kept
//! in a backlog (indications that arrive while a request waits).

use std::io::{self, Read, Write};

use tern_proto::client::{Client, Deframer, Event, Response};

pub struct StreamClient<S> {
    pub stream: S,
    pub client: Client,
    /// Frames read while waiting for an answer.
    pub backlog: Vec<Vec<u8>>,
    deframer: Deframer,
}

impl<S: Read + Write> StreamClient<S> {
    pub fn new(stream: S, client: Client) -> StreamClient<S> {
        StreamClient {
            stream,
            client,
            backlog: Vec::new(),
            deframer: Deframer::default(),
        }
    }

    /// Reads the next whole frame (STUN or ChannelData), never past its end.
    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        read_frame(&mut self.stream, &mut self.deframer)
    }

    /// Writes `bytes` and flushes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends `request` and returns the answer (its bytes too), answering 401/438 challenges.
    pub fn request(
        &mut self,
        request: tern_proto::client::Request,
    ) -> io::Result<(Response, Option<bool>, Vec<u8>)> {
        self.client.start(request);
        let mut out = [0u8; 1500];
        loop {
            let n = self
                .client
                .transmit(&mut out)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.send(&out[..n])?;
            loop {
                let frame = self.read_frame()?;
                match self.client.handle(&frame) {
                    Some(Event::Challenged) => break,
                    Some(Event::Done { response, verified }) => {
                        return Ok((response, verified, frame))
                    }
                    None => self.backlog.push(frame),
                }
            }
        }
    }
}

/// Reads from `stream` until `deframer` holds a whole frame (STUN or ChannelData) and returns it,
/// never reading past its end (the caller may read the stream itself afterwards).
pub fn read_frame<S: Read>(stream: &mut S, deframer: &mut Deframer) -> io::Result<Vec<u8>> {
    loop {
        match deframer.next_frame() {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
        let mut chunk = vec![0u8; deframer.wanted()];
        stream.read_exact(&mut chunk)?;
        deframer.push(&chunk);
    }
}
