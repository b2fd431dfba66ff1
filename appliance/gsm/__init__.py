"""GSM SMS codec: pure functions, standard library only, no I/O.

Texts become SMS-SUBMIT PDUs (GSM 7-bit with its extension table, or UCS-2), received
PDUs become `Pdu` values, long messages are split by `segments` and joined again by
`Reassembler`, USSD replies are read by `decode_ussd`, WAP push payloads come from `wap`.
References: 3GPP TS 23.040 (PDUs) and TS 23.038 (alphabets, data coding schemes).
"""

from .deliver import encode_deliver, encode_status_report
from .errors import EncodingError, PduError
from .pdu import Pdu, decode, tpdu_length
from .reassembly import FragmentKey, FragmentStore, MemoryFragmentStore, Reassembler
from .segment import Segmentation, segments
from .submit import encode_part, encode_submit, encode_submit_binary
from .ussd import decode_ussd, encode_ussd, ussd_code_problem
from .wap import encode_wap_push, from_ozeki_xml, service_indication, service_loading

__all__ = [
    "EncodingError", "FragmentKey", "FragmentStore", "MemoryFragmentStore", "Pdu",
    "PduError", "Reassembler", "Segmentation", "decode", "decode_ussd", "encode_deliver",
    "encode_part", "encode_status_report", "encode_submit", "encode_submit_binary",
    "encode_ussd", "encode_wap_push", "from_ozeki_xml", "segments", "service_indication",
    "service_loading", "tpdu_length", "ussd_code_problem",
]
