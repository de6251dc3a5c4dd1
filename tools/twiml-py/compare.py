"""Checks wadash's messaging TwiML against Twilio's official Python helper library.

Reads a JSON list of cases on stdin:

    [{"name": "optional label",
      "messages": [{"body": str|null, "media": [str], "to": str|null,
                    "from": str|null, "status_callback": str|null}],
      "ours": "<?xml ...?><Response>...</Response>"}]

For each case it builds the same reply with twilio.twiml.messaging_response.MessagingResponse
(body and media as nested <Body>/<Media> elements) and compares the C14N 2.0 canonical form
of both documents, so attribute order, `<a/>` versus `<a />` and the choice of escapes do not
matter, while any difference in elements, attributes or text does. C14N drops the XML
declaration, so the declarations (`<?xml ...?>`) are compared separately, byte for byte.

Prints a JSON report on stdout. Exit status: 0 when every case matches, 1 when any case
differs (each mismatch is reported with both documents), 2 when the input is unusable.
"""

import json
import sys
import xml.etree.ElementTree as ET

from twilio.twiml.messaging_response import MessagingResponse


def theirs(messages):
    response = MessagingResponse()
    for m in messages:
        message = response.message(
            to=m.get("to"),
            from_=m.get("from"),
            status_callback=m.get("status_callback"),
        )
        if m.get("body") is not None:
            message.body(m["body"])
        for url in m.get("media") or []:
            message.media(url)
    return str(response)


def canonical(document):
    """The C14N 2.0 form of `document`, or the parse error as a string prefixed with `!`."""
    try:
        return ET.canonicalize(xml_data=document)
    except ET.ParseError as e:
        return f"! not well-formed XML: {e}"


def declaration(document):
    """The leading `<?xml ...?>` of `document`, or "" when it has none."""
    if not document.startswith("<?xml"):
        return ""
    return document[: document.find("?>") + 2]


def compare(index, case):
    ours = case["ours"]
    helper = theirs(case["messages"])
    ours_c14n = canonical(ours)
    theirs_c14n = canonical(helper)
    result = {"index": index, "name": case.get("name", f"case {index}")}
    same = (
        not ours_c14n.startswith("!")
        and ours_c14n == theirs_c14n
        and declaration(ours) == declaration(helper)
    )
    if not same:
        result.update(
            ours=ours,
            theirs=helper,
            ours_canonical=ours_c14n,
            theirs_canonical=theirs_c14n,
        )
    return result


def main():
    # The cases carry emoji and non-Latin scripts: do not depend on the locale's encoding.
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    try:
        cases = json.load(sys.stdin)
        if not isinstance(cases, list) or not cases:
            raise ValueError("expected a non-empty JSON list of cases")
        results = [compare(i, case) for i, case in enumerate(cases)]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        json.dump({"ok": False, "error": f"unusable input: {e!r}"}, sys.stdout)
        print()
        return 2
    mismatches = [r for r in results if "ours" in r]
    report = {
        "ok": not mismatches,
        "cases": len(results),
        "matched": len(results) - len(mismatches),
        "mismatches": mismatches,
    }
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
