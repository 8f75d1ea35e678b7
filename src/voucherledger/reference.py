"""The vocabularies of the product: group types, service categories, countries.

Group types and service categories are those of ``docs/design.md`` (groups and
service categories); countries are ISO 3166-1 alpha-2 codes (from pycountry).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import pycountry
from pydantic import AfterValidator, StringConstraints

GroupType = Literal[
    "individual",
    "hometown_association",
    "ethnic_association",
    "alumni_association",
    "religious_association",
    "professional_association",
    "development_ngo",
    "investment_group",
    "political_group",
    "national_development_group",
    "welfare_refugee_group",
    "umbrella_body",
    "supplementary_school",
    "virtual_organisation",
    "research_think_tank",
    "arts_cultural_group",
    "womens_group",
    "development_education_centre",
    "service_provider",
    "youth_group",
]

ServiceCategory = Literal[
    "leadership",
    "management",
    "fundraising",
    "financial_literacy",
    "financial_management",
    "governance",
    "advocacy",
    "enterprise_development",
    "export_markets",
    "marketing",
    "legal_registration",
    "digital_skills",
    "monitoring_evaluation",
    "volunteering",
    "networking",
    "gender_mainstreaming",
]

GROUP_TYPES: frozenset[str] = frozenset(get_args(GroupType))
SERVICE_CATEGORIES: frozenset[str] = frozenset(get_args(ServiceCategory))
COUNTRY_CODES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)


def _check_country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    AfterValidator(_check_country),
]
