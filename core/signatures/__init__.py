"""Digital signatures: CMS, trust anchors, verification, certificates and signing."""
