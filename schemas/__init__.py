"""Wire schemas (v1) for request events, GPU samples and alert events."""

from fleetpulse.schemas.fast import DecodedBatch, RequestEvent, decode_requests
from fleetpulse.schemas.v1 import ALERT, GPU, REQUEST, SCHEMAS, VERSION
from fleetpulse.schemas.validate import Decoded, DeadLetter, decode_message, encode_batch, validate_event

__all__ = ["ALERT", "GPU", "REQUEST", "SCHEMAS", "VERSION", "Decoded", "DeadLetter", "DecodedBatch", "RequestEvent",
           "decode_message", "decode_requests", "encode_batch", "validate_event"]
