"""Sub-layer 5 of the pipeline: whole builds over the layers below. The demo over the bundled
sample data ([`run_demo`][metaclip2.pipeline.builds.demo.run_demo]) and the worldwide metadata build
from downloaded dumps ([`build_all`][metaclip2.pipeline.builds.worldwide.build_all]).
"""

from metaclip2.pipeline.builds.demo import DEMO_DATA, DEMO_LANGUAGES, DEMO_T_EN, build_demo_metadata, make_sample_pool, run_demo, write_example_pool
from metaclip2.pipeline.builds.worldwide import LanguageSources, MISSING_SEGMENTER_POLICIES, WorldwideReport, build_all, build_language, find_sources, split_pageviews

__all__ = [
    "DEMO_DATA",
    "DEMO_LANGUAGES",
    "DEMO_T_EN",
    "build_demo_metadata",
    "make_sample_pool",
    "run_demo",
    "write_example_pool",
    "MISSING_SEGMENTER_POLICIES",
    "LanguageSources",
    "WorldwideReport",
    "find_sources",
    "split_pageviews",
    "build_language",
    "build_all",
]
