"""The admin index with the operations dashboard above the app list. It wraps the site's own
index (so any AdminSite customisation of the app list still applies) and only adds the figures
and its template."""

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from operations import selectors
from operations.chart import activity_chart

INDEX_TEMPLATE = "admin/operations/index.html"


def dashboard_index(request: HttpRequest) -> TemplateResponse:
    figures = selectors.dashboard(user=request.user)
    series = figures["series"]
    chart = activity_chart(series["sent"], series["import_rows"], end=series["end"])
    response = admin.site.index(request, extra_context={"dashboard": figures, "chart": chart})
    response.template_name = INDEX_TEMPLATE
    return response
