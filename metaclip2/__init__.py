"""metaclip2: worldwide metadata-based curation of image-text pairs (Meta CLIP 2).

The pipeline, one subpackage per stage:

* :mod:`metaclip2.metadata` — per-language entry lists from WordNet/OMW, Wikipedia
  unigrams, PMI bigrams and page-view titles (SPEC §1);
* :mod:`metaclip2.matching` — language identification and Aho-Corasick
  substring matching of alt-texts against their language's entries (SPEC §2);
* :mod:`metaclip2.curation` — entry counts, per-language thresholds and
  balanced sampling, offline or online (Algorithm 1, SPEC §3).

Everything below is importable from ``metaclip2`` directly.
"""

from metaclip2.metadata import *  # noqa: F401,F403
from metaclip2.metadata import __all__ as _metadata_all
from metaclip2.matching import *  # noqa: F401,F403
from metaclip2.matching import __all__ as _matching_all
from metaclip2.curation import *  # noqa: F401,F403
from metaclip2.curation import __all__ as _curation_all

__version__ = "0.1.0"
__all__ = [*_metadata_all, *_matching_all, *_curation_all]
