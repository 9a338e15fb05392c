"""Trainers: behavior cloning (:mod:`.bc`) and recurrent PPO."""
