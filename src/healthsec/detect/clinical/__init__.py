"""Clinical detectors: HL7 v2, DICOM, EHR/FHIR access and IoMT telemetry, each with a site baseline."""
