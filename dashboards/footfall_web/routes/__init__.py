"""The HTTP routes, one APIRouter per concern (pages, login, public display, JSON API,
reports, alert actions, live stream); `footfall_web.app` includes them in this order."""
