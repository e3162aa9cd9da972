"""DRF-style pages for every list: `count`, `next`, `previous`, `results`; `?page=` and `?page_size=`."""
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """Page numbers with a caller-chosen page size, capped so that one request stays small."""

    page_size_query_param = "page_size"
    max_page_size = 500


def paginated_response(*, serializer_class, queryset, request, view, context: dict | None = None):
    """One page of `queryset`, serialized, in the paginated envelope."""
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True, context={"request": request, **(context or {})})
    return paginator.get_paginated_response(serializer.data)
