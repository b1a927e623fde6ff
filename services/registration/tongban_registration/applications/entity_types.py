"""The kinds of business a person can register, and what each means for its USCC."""

from __future__ import annotations

from enum import StrEnum


class EntityType(StrEnum):
    LIMITED_COMPANY = "limited_company"  # 有限责任公司
    JOINT_STOCK_COMPANY = "joint_stock_company"  # 股份有限公司
    SOLE_PROPRIETORSHIP = "sole_proprietorship"  # 个人独资企业
    PARTNERSHIP = "partnership"  # 合伙企业
    INDIVIDUAL_BUSINESS = "individual_business"  # 个体工商户
    FARMERS_COOPERATIVE = "farmers_cooperative"  # 农民专业合作社


#: GB 32100 position 2 under market regulation (authority 9): 1 enterprise, 2 individual
#: business, 3 farmers' specialised cooperative.
USCC_CATEGORY: dict[EntityType, str] = {
    EntityType.LIMITED_COMPANY: "1",
    EntityType.JOINT_STOCK_COMPANY: "1",
    EntityType.SOLE_PROPRIETORSHIP: "1",
    EntityType.PARTNERSHIP: "1",
    EntityType.INDIVIDUAL_BUSINESS: "2",
    EntityType.FARMERS_COOPERATIVE: "3",
}

#: Market regulation registers businesses (GB 32100 registration authority code).
MARKET_REGULATION_AUTHORITY = "9"
