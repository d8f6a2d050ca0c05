import re

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """`page` and `limit` held to what the schema declares: a `limit` that is not a whole number
    from 1 to API_MAX_PAGE_SIZE is a 400 naming it (DRF would fall back to the default page size
    without a word), and so is a `page` that is not a whole number from 1 (DRF reads an empty one
    as the first page and `last` as the last); a page past the last answers 404."""

    page_size_query_param = "limit"
    max_page_size = settings.API_MAX_PAGE_SIZE

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"limit": [f"must be a whole number from 1 to {self.max_page_size}"]})
        return size

    def get_page_number(self, request, paginator) -> int:
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not re.fullmatch(r"[0-9]+", raw) or int(raw) < 1:
            raise ValidationError({"page": ["must be a whole number from 1"]})
        return int(raw)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
