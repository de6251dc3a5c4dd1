"""Sends Twilio-shaped status callbacks signed by Twilio's official Python helper library.

Used by tests/api/proxy.rs to post callbacks through a TLS reverse proxy exactly as Twilio
would: the X-Twilio-Signature is computed by twilio.request_validator.RequestValidator for the
public https:// URL, never by wadash's own code.

Reads one JSON object on stdin:

    {"url": "https://localhost:PORT/sts", "token": "<auth token>", "ca": "/path/ca.pem",
     "account": "AC...", "sids": ["SM...", ...], "status": "delivered",
     "sign_url": "optional: sign for this URL instead of `url` (a proxy's mistake)"}

Posts one callback per sid, in order, over one keep-alive session (certificates checked
against `ca`). Prints a JSON report on stdout: {"sent": n, "statuses": {"200": n, ...}}.
Exit status 0 when it ran (the caller judges the statuses), 2 when the input is unusable.
"""

import collections
import json
import sys

import requests
from twilio.request_validator import RequestValidator


def main():
    try:
        job = json.load(sys.stdin)
        url, token, ca = job["url"], job["token"], job["ca"]
        sids, status, account = job["sids"], job["status"], job["account"]
    except (ValueError, KeyError) as e:
        print(f"unusable input: {e}", file=sys.stderr)
        return 2
    sign_url = job.get("sign_url") or url
    validator = RequestValidator(token)
    statuses = collections.Counter()
    with requests.Session() as session:
        for sid in sids:
            params = {
                "SmsSid": sid,
                "SmsStatus": status,
                "MessageStatus": status,
                "ChannelToAddress": "+9199000000XX",
                "To": "whatsapp:+919900000000",
                "ChannelPrefix": "whatsapp",
                "MessageSid": sid,
                "AccountSid": account,
                "StructuredMessage": "false",
                "From": "whatsapp:+14155238886",
                "ApiVersion": "2010-04-01",
                "ChannelInstallSid": "XE" + "0" * 32,
            }
            signature = validator.compute_signature(sign_url, params)
            resp = session.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": signature},
                verify=ca,
                timeout=15,
            )
            statuses[str(resp.status_code)] += 1
    print(json.dumps({"sent": len(sids), "statuses": statuses}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
