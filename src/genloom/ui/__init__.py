"""The Gradio UI (`genloom ui`): :func:`genloom.ui.app.build_app` / :func:`genloom.ui.app.launch`."""
