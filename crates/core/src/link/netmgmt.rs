//! Network management (MTI class 8), answered by the link itself: sign-on
//! (DE 70 = 001), sign-off (002) and echo test (301), and the 0800 requests
//! cardhub sends (sign-on when dialing, echo on an idle line, sign-off on
//! shutdown).

use crate::iso8583::fields::{ResponseCode, Stan};
use crate::iso8583::{Message, Mti};

use super::handler::answer;

/// DE 70 codes cardhub understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkCode {
    SignOn,
    SignOff,
    Echo,
}

impl NetworkCode {
    /// The three-digit DE 70 value.
    pub fn code(self) -> &'static str {
        match self {
            NetworkCode::SignOn => "001",
            NetworkCode::SignOff => "002",
            NetworkCode::Echo => "301",
        }
    }

    fn from_code(code: u16) -> Option<NetworkCode> {
        match code {
            1 => Some(NetworkCode::SignOn),
            2 => Some(NetworkCode::SignOff),
            301 => Some(NetworkCode::Echo),
            _ => None,
        }
    }
}

/// The answer to a network management request from the peer, and the
/// sign-on state it leaves (`Some(true)` signed on, `Some(false)` signed off,
/// `None` unchanged).
pub fn answer_request(request: &Message) -> (Message, Option<bool>) {
    match request
        .network_management_code()
        .ok()
        .and_then(NetworkCode::from_code)
    {
        Some(code) => {
            let state = match code {
                NetworkCode::SignOn => Some(true),
                NetworkCode::SignOff => Some(false),
                NetworkCode::Echo => None,
            };
            (answer(request, ResponseCode::APPROVED), state)
        }
        None => (answer(request, ResponseCode::INVALID_TRANSACTION), None),
    }
}

/// The sign-on state an answer to our own sign-on or sign-off leaves:
/// `Some(true)` after an approved sign-on, `Some(false)` after an approved
/// sign-off, `None` for anything else.
pub fn state_after_answer(answer: &Message) -> Option<bool> {
    if answer.mti().class() != 8 || !answer.response_code().is_ok_and(|c| c.is_approval()) {
        return None;
    }
    match answer
        .network_management_code()
        .ok()
        .and_then(NetworkCode::from_code)
    {
        Some(NetworkCode::SignOn) => Some(true),
        Some(NetworkCode::SignOff) => Some(false),
        _ => None,
    }
}

/// An 0800 that cardhub originates.
pub fn request(
    code: NetworkCode,
    stan: Stan,
    header: Option<&str>,
    terminal: Option<&str>,
) -> Message {
    let mut msg = Message::new(Mti::NETWORK_REQUEST);
    msg.set_header(header.map(|h| h.as_bytes().to_vec()));
    msg.set(7, transmission_time());
    msg.set_stan(stan);
    if let Some(t) = terminal {
        msg.set(41, t);
    }
    msg.set(70, code.code());
    msg
}

/// DE 7 for now, UTC, MMDDhhmmss.
pub fn transmission_time() -> String {
    jiff::Timestamp::now().strftime("%m%d%H%M%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_on_echo_sign_off_and_unknown() {
        let stan = Stan::new(7).unwrap();
        let on = request(NetworkCode::SignOn, stan, Some("ISO006000070"), None);
        let (reply, state) = answer_request(&on);
        assert_eq!(reply.mti().as_str(), "0810");
        assert_eq!(reply.response_code().unwrap(), ResponseCode::APPROVED);
        assert_eq!(reply.stan().unwrap(), stan);
        assert_eq!(reply.header(), Some(&b"ISO006000070"[..]));
        assert_eq!(state, Some(true));
        let (_, state) = answer_request(&request(NetworkCode::SignOff, stan, None, None));
        assert_eq!(state, Some(false));
        let (_, state) = answer_request(&request(NetworkCode::Echo, stan, None, None));
        assert_eq!(state, None);
        let mut odd = request(NetworkCode::Echo, stan, None, None);
        odd.set(70, "999");
        let (reply, state) = answer_request(&odd);
        assert_eq!(reply.response_code().unwrap().as_str(), "12");
        assert_eq!(state, None);
        assert_eq!(transmission_time().len(), 10);
        let (on_reply, _) = answer_request(&on);
        assert_eq!(state_after_answer(&on_reply), Some(true));
        assert_eq!(state_after_answer(&on), None, "a request is not an answer");
    }
}
