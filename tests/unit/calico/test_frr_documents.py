"""One ``vtysh`` run's answers split back into each command's JSON document (issue 28).

The BGP read asks an FRR switch for its sessions and its routes in one ``vtysh`` run;
anything but exactly the documents asked for (an error sentence, an empty answer) is
None, and the read then asks each command alone, as it did before.
"""

from __future__ import annotations

from labctl.calico.status import frr_documents


def test_each_commands_answer_is_one_document() -> None:
    text = '{\n  "ipv4Unicast": {"peers": {}}\n}\n{\n  "10.188.0.0/26": [{"protocol": "bgp"}]\n}\n'
    summary, routes = frr_documents(text, 2) or []
    assert summary == '{\n  "ipv4Unicast": {"peers": {}}\n}'
    assert routes == '{\n  "10.188.0.0/26": [{"protocol": "bgp"}]\n}'


def test_anything_but_the_documents_asked_for_is_none() -> None:
    assert frr_documents("", 2) is None
    assert frr_documents("{}\n", 2) is None  # one answer missing
    assert frr_documents("{}\n{}\n{}\n", 2) is None
    assert frr_documents("% BGP instance not found\n{}\n", 2) is None
    assert frr_documents("{}\n% Unknown command\n", 2) is None
