"""GSM SMS codec: pure functions, standard library only, no I/O.

Texts become SMS-SUBMIT PDUs (GSM 7-bit with its extension table, or UCS-2), received
PDUs become `Pdu` values, long messages are split by `segments` and joined again by
`Reassembler`. References: 3GPP TS 23.040 (PDUs) and TS 23.038 (alphabets, DCS).
"""

from .deliver import encode_deliver, encode_status_report
from .errors import EncodingError, PduError
from .pdu import Pdu, decode, tpdu_length
from .segment import Segmentation, segments
from .submit import encode_part, encode_submit, encode_submit_binary

__all__ = [
    "EncodingError", "Pdu", "PduError", "Segmentation", "decode", "encode_deliver",
    "encode_part", "encode_status_report", "encode_submit", "encode_submit_binary",
    "segments", "tpdu_length",
]
