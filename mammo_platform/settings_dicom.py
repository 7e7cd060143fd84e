"""DICOM settings, from the environment: the listener (who we are, who may send), DICOMweb and where results go.

settings.py takes them in with:

    from mammo_platform.settings_dicom import dicom_settings
    globals().update(dicom_settings(env, var_dir=VAR_DIR))

Peers are "AET@host" entries, comma separated: DICOM_ALLOWED_PEERS=MG01@10.1.2.3,PACS@pacs.hospital.local. An empty
list lets nobody send (the listener logs that at start). Values are checked when the listener starts
(cases.dicom.peers), so a typo stops it with a message naming the entry rather than letting the wrong peer in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ


def dicom_settings(env: environ.Env, *, var_dir: Path) -> dict[str, Any]:
    return {
        # The listener (C-ECHO / C-STORE SCP): `manage.py dicom_listener`.
        "DICOM_AE_TITLE": env("DICOM_AE_TITLE", default="MAMMO_AI"),
        "DICOM_PORT": env.int("DICOM_PORT", default=11112),
        # Loopback by default; a hospital deployment listens on its network (0.0.0.0, docker/ sets it).
        "DICOM_BIND_ADDRESS": env("DICOM_BIND_ADDRESS", default="127.0.0.1"),
        "DICOM_ALLOWED_PEERS": env.list("DICOM_ALLOWED_PEERS", default=[]),
        # Received instances wait here (durably) until ingestion has decided; leftovers are ingested at start.
        "DICOM_SPOOL_DIR": Path(env("DICOM_SPOOL_DIR", default=str(var_dir / "dicom-spool"))),
        "DICOM_MAX_ASSOCIATIONS": env.int("DICOM_MAX_ASSOCIATIONS", default=10),
        "DICOM_ACSE_TIMEOUT": env.float("DICOM_ACSE_TIMEOUT", default=30.0),
        "DICOM_DIMSE_TIMEOUT": env.float("DICOM_DIMSE_TIMEOUT", default=120.0),
        "DICOM_NETWORK_TIMEOUT": env.float("DICOM_NETWORK_TIMEOUT", default=120.0),
        "DICOM_MAX_PDU": env.int("DICOM_MAX_PDU", default=262144),
        # The platform user in whose name received instances are recorded (created by the listener if missing).
        "DICOM_INGEST_USERNAME": env("DICOM_INGEST_USERNAME", default="dicom-listener"),
        # Where the AI results (SR and overlay Secondary Capture) are sent once an analysis succeeds: a DICOM node
        # (C-STORE) and/or a DICOMweb STOW-RS endpoint. Empty: results are kept and downloadable, not sent.
        "DICOM_DESTINATION_AE_TITLE": env("DICOM_DESTINATION_AE_TITLE", default=""),
        "DICOM_DESTINATION_HOST": env("DICOM_DESTINATION_HOST", default=""),
        "DICOM_DESTINATION_PORT": env.int("DICOM_DESTINATION_PORT", default=104),
        "DICOM_DESTINATION_STOW_URL": env("DICOM_DESTINATION_STOW_URL", default=""),
        # Sent as the Authorization header to the STOW-RS destination, e.g. "Bearer ..." (a secret: no default).
        "DICOM_DESTINATION_STOW_AUTHORIZATION": env("DICOM_DESTINATION_STOW_AUTHORIZATION", default=""),
        # Which AI result objects the platform makes and sends (comma separated): cad_sr (the Mammography CAD SR
        # per study, what mammography workstations show CAD marks from), study_sr (a TID 1500 SR per study),
        # image_sr (a TID 1500 SR per image), overlay_sc (the heatmap overlay per image, a Secondary Capture).
        "DICOM_RESULT_OBJECTS": _result_objects(env),
        # A study's objects are made once no instance has arrived for this long (as Orthanc's StableAge) and every
        # image's analysis has ended; a later instance makes a new version that references the one it replaces.
        "DICOM_STUDY_STABLE_SECONDS": env.int("DICOM_STUDY_STABLE_SECONDS", default=60),
        # Delivery retries: exponential backoff from DICOM_DELIVERY_BACKOFF_SECONDS, capped, this many attempts.
        "DICOM_DELIVERY_MAX_ATTEMPTS": env.int("DICOM_DELIVERY_MAX_ATTEMPTS", default=8),
        "DICOM_DELIVERY_BACKOFF_SECONDS": env.int("DICOM_DELIVERY_BACKOFF_SECONDS", default=30),
        "DICOM_DELIVERY_BACKOFF_MAX_SECONDS": env.int("DICOM_DELIVERY_BACKOFF_MAX_SECONDS", default=3600),
        # Screening appointments (docs/screening-episodes.md). Images are linked to their appointment by accession
        # number whatever this says; with SCREENING_HOLD_UNMATCHED on, an image whose accession matches no
        # appointment is held for a person to match (a screening site that books every woman sets it); off (the
        # default, as before appointments existed), it makes a study of its own, attached to no appointment.
        "SCREENING_HOLD_UNMATCHED": env.bool("SCREENING_HOLD_UNMATCHED", default=False),
        # Accession numbers the platform gives appointments: this prefix and the appointment's number (DICOM SH:
        # at most 16 characters in all, so at most 6 here).
        "SCREENING_ACCESSION_PREFIX": env("SCREENING_ACCESSION_PREFIX", default="MA"),
    }


RESULT_OBJECT_KINDS = ("cad_sr", "study_sr", "image_sr", "overlay_sc")


def _result_objects(env: environ.Env) -> list[str]:
    chosen = [kind.strip() for kind in env.list("DICOM_RESULT_OBJECTS", default=list(RESULT_OBJECT_KINDS)) if kind]
    unknown = sorted(set(chosen) - set(RESULT_OBJECT_KINDS))
    if unknown:
        raise environ.ImproperlyConfigured(
            f"DICOM_RESULT_OBJECTS: unknown {', '.join(unknown)}; choose among {', '.join(RESULT_OBJECT_KINDS)}"
        )
    return chosen
