"""Who may do what on the logs pages: everyone signed in reads; editors and admins cancel and re-run."""
from config.roles import user_is_editor as user_can_operate_runs

__all__ = ["user_can_operate_runs"]
