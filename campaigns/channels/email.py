"""Email through Django's mail framework (SMTP for real, console and locmem in development),
multipart text + HTML, with RFC 8058 one-click unsubscribe headers.

Internationalized addresses: an IDN domain goes out as punycode, which every server takes. A
UTF-8 local part (`renée@...`, RFC 6531) needs the server's SMTPUTF8 extension: such a message is
sent with it when the server offers it, and fails alone, with the reason, when it does not."""

import email.message
import email.policy
import io
import smtplib
import socket
from email.generator import BytesGenerator

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import sanitize_address

from campaigns.channels.base import ChannelBackend, OutgoingMessage, SendError


class EmailBackend(ChannelBackend):
    def __init__(self) -> None:
        self.connection = None

    def open(self) -> None:
        self.connection = get_connection(fail_silently=False)
        try:
            self.connection.open()
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"cannot connect to the mail server: {exc}") from None

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except (OSError, smtplib.SMTPException):
                pass  # the server went away; nothing is left to flush
            self.connection = None

    def send(self, message: OutgoingMessage) -> str:
        message_id = f"<{message.uid}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={"Message-ID": message_id, **message.headers},
            connection=self.connection,
        )
        if message.body_html:
            email.attach_alternative(message.body_html, "text/html")
        try:
            if message.recipient.rpartition("@")[0].isascii():
                email.send()
            else:
                self._send_smtputf8(email, message.recipient)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"recipient refused: {_first_reason(exc.recipients)}", permanent=_permanent(exc.recipients)) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise SendError(f"{exc.smtp_code} {text}", permanent=500 <= exc.smtp_code < 600) from None
        except (socket.timeout, TimeoutError) as exc:
            # The server may have queued it before the reply was lost.
            self._reconnect()
            raise SendError(f"timed out waiting for the mail server: {exc}", unknown=True) from None
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as a disconnect: the message may have been taken.
            self._reconnect()
            raise SendError(f"mail server connection lost: {exc}", unknown="timed out" in str(exc)) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._reconnect()
            raise SendError(f"mail server connection failed: {exc}") from None
        return message_id

    def _send_smtputf8(self, outgoing: EmailMultiAlternatives, recipient: str) -> None:
        """Django's SMTP backend would encode a UTF-8 local part as an RFC 2047 word, which is no
        address: the envelope and the To header go out in UTF-8 with SMTPUTF8 instead."""
        smtp = getattr(self.connection, "connection", None)
        if not isinstance(smtp, smtplib.SMTP):
            outgoing.send()  # the console and locmem backends have no server to ask
            return
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("smtputf8"):
            raise SendError(f"the server does not offer SMTPUTF8, needed for {recipient}", permanent=True)
        mime = outgoing.message()
        del mime["To"]
        # Set on the base class: Django's MIME classes would encode the address again.
        _set_header(mime, "To", recipient)
        buffer = io.BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=_SMTPUTF8).flatten(mime)
        sender = sanitize_address(outgoing.from_email, outgoing.encoding or settings.DEFAULT_CHARSET)
        smtp.sendmail(sender, [recipient], buffer.getvalue(), mail_options=["SMTPUTF8"])

    def _reconnect(self) -> None:
        self.close()
        try:
            self.open()
        except SendError:
            pass  # the next send reports it


_SMTPUTF8 = email.policy.SMTPUTF8.clone(linesep="\r\n")
_set_header = email.message.Message.__setitem__


def _permanent(recipients: dict) -> bool:
    return all(500 <= code < 600 for code, _ in recipients.values())


def _first_reason(recipients: dict) -> str:
    for code, reason in recipients.values():
        return f"{code} {reason.decode(errors='replace') if isinstance(reason, bytes) else reason}"
    return "refused"
